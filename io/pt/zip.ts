/**
 * A minimal ZIP reader and writer for PyTorch checkpoints (bytes in, bytes out, no file system).
 *
 * `torch.save` (PyTorch ≥ 1.6) writes an uncompressed ("stored") zip through miniz:
 *   [local header][name]["FB" extra field padding the data to 64 bytes][data][data descriptor]
 *   ... one per record ...
 *   [central directory][zip64 end-of-central-directory record + locator][end of central directory]
 * The local headers carry no sizes or CRC (flag bit 3: they follow the data in a descriptor);
 * the central directory is the source of truth, and it is what this reader trusts.
 *
 * Reading refuses compressed entries (torch.save never writes them; no inflater is bundled),
 * encrypted entries and split archives. Every offset and size is checked against the file's
 * size before use, and nothing is allocated beyond what the file itself justifies. The reader
 * works on a byte source (io/byteSource.ts): only the directory is read up front, entries on
 * demand, so a file of any size is opened without reading it.
 */
import { DitMoeError } from '../../core/errors.js';
import { memorySource, type ByteSource } from '../byteSource.js';

export interface ZipEntry {
  name: string;
  /** Offset of the entry's local header in the archive. */
  headerOffset: number;
  /** Offset of the entry's data (after the local header) in the archive. */
  dataOffset: number;
  /** Stored size in bytes (= uncompressed size; only stored entries are accepted). */
  size: number;
  crc32: number;
}

export interface ZipArchive {
  entries: ZipEntry[];
  byName: Map<string, ZipEntry>;
  /** What the archive is read from. */
  source: ByteSource;
  /** The entry's bytes (a view when the archive is in memory); checks the CRC-32 unless told not to. */
  read(entry: ZipEntry, opts?: { checkCrc?: boolean }): Uint8Array;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_DESCRIPTOR = 0x08074b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** torch.save aligns every record's data to 64 bytes (caffe2 `kFieldAlignment`). */
export const TORCH_ALIGNMENT = 64;

function fail(what: string, where: string): never {
  throw new DitMoeError(what, where);
}

/** u64 little-endian as a number; refuses values past 2^53 (no file is that large). */
function u64(dv: DataView, at: number, what: string, where: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is absurdly large`, where);
  return Number(v);
}

/** A central directory larger than this is refused (torch.save writes ~100 bytes per tensor). */
const MAX_DIRECTORY = 256 * 2 ** 20;

/** Parses the archive's directory held in memory. `where` (usually the file name) prefixes every error. */
export function readZip(bytes: Uint8Array, where = 'zip'): ZipArchive {
  return indexZip(memorySource(bytes, where), where);
}

/**
 * Reads and checks the archive's directory from a byte source: the end-of-central-directory
 * record, the zip64 record and locator when present, the central directory and each entry's
 * local header; every offset and size is checked against the file's size before any entry's
 * data is read (a truncated file is reported here). Entries are read on demand.
 */
export function indexZip(src: ByteSource, where = 'zip'): ZipArchive {
  const len = src.size;
  if (len < EOCD_SIZE) fail(`file is ${len} bytes, too short to be a zip archive`, where);
  const at = (offset: number, n: number): DataView => {
    const b = src.read(offset, n);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  };
  const first = src.read(0, Math.min(len, 4));
  if (new DataView(first.buffer, first.byteOffset, first.byteLength).getUint32(0, true) !== SIG_LOCAL) {
    if (first[0] === 0x80 && first[1] >= 2) fail('this is a bare pickle (the legacy pre-1.6 torch.save format), not a zip checkpoint; re-save it with a recent PyTorch', where);
    fail('not a zip archive (no local file header signature PK\\3\\4 at the start): truncated or not a PyTorch checkpoint', where);
  }

  // The end-of-central-directory record: the last PK\5\6 followed by exactly its comment.
  const tailStart = Math.max(0, len - EOCD_SIZE - MAX_COMMENT - 20);
  const tail = at(tailStart, len - tailStart);
  let eocd = -1;
  for (let p = len - EOCD_SIZE; p >= Math.max(0, len - EOCD_SIZE - MAX_COMMENT); p--) {
    const q = p - tailStart;
    if (tail.getUint32(q, true) === SIG_EOCD && p + EOCD_SIZE + tail.getUint16(q + 20, true) === len) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record: the zip is truncated or damaged', where);
  const e0 = eocd - tailStart;
  const disk = tail.getUint16(e0 + 4, true);
  const cdDisk = tail.getUint16(e0 + 6, true);
  let count = tail.getUint16(e0 + 10, true);
  let cdSize = tail.getUint32(e0 + 12, true);
  let cdOffset = tail.getUint32(e0 + 16, true);
  if (disk !== 0 || cdDisk !== 0 || tail.getUint16(e0 + 8, true) !== count) fail('split (multi-disk) zip archives are not supported', where);

  // zip64: a locator right before the EOCD points at the zip64 EOCD record (miniz always writes it).
  const loc = eocd - 20;
  if (loc >= tailStart && tail.getUint32(loc - tailStart, true) === SIG_ZIP64_LOCATOR) {
    const z = u64(tail, loc - tailStart + 8, 'zip64 end-of-central-directory offset', where);
    if (z + 56 > loc) fail(`zip64 end-of-central-directory offset ${z} runs past its locator`, where);
    const dv = at(z, 56);
    if (dv.getUint32(0, true) !== SIG_ZIP64_EOCD) fail(`no zip64 end-of-central-directory record at offset ${z}`, where);
    const n64 = u64(dv, 32, 'zip64 entry count', where);
    if (u64(dv, 24, 'zip64 entry count', where) !== n64) fail('split (multi-disk) zip archives are not supported', where);
    const size64 = u64(dv, 40, 'zip64 central directory size', where);
    const off64 = u64(dv, 48, 'zip64 central directory offset', where);
    // The 32-bit fields must either agree or be the 0xFFFF.. "see zip64" markers.
    if (count !== 0xffff && count !== n64) fail(`entry counts disagree (${count} vs zip64 ${n64})`, where);
    if (cdSize !== 0xffffffff && cdSize !== size64) fail(`central directory sizes disagree (${cdSize} vs zip64 ${size64})`, where);
    if (cdOffset !== 0xffffffff && cdOffset !== off64) fail(`central directory offsets disagree (${cdOffset} vs zip64 ${off64})`, where);
    count = n64;
    cdSize = size64;
    cdOffset = off64;
  }
  const cdEnd = cdOffset + cdSize;
  if (cdEnd > eocd) fail(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past the end-of-central-directory record at ${eocd}`, where);
  if (count * CENTRAL_SIZE > cdSize) fail(`${count} entries cannot fit in a central directory of ${cdSize} bytes`, where);
  if (cdSize > MAX_DIRECTORY) fail(`central directory of ${cdSize} bytes is larger than ${MAX_DIRECTORY}`, where);
  const cdBytes = src.read(cdOffset, cdSize);
  const dv = new DataView(cdBytes.buffer, cdBytes.byteOffset, cdBytes.byteLength);

  const names = new TextDecoder('utf-8', { fatal: true });
  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let p = 0; // offsets into the directory
  for (let i = 0; i < count; i++) {
    const at0 = `${where}: zip entry ${i}`;
    if (p + CENTRAL_SIZE > cdSize) fail(`central directory entry at ${cdOffset + p} runs past the directory's end`, at0);
    if (dv.getUint32(p, true) !== SIG_CENTRAL) fail(`no central directory signature at offset ${cdOffset + p}`, at0);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc32 = dv.getUint32(p + 16, true);
    let csize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let localOffset = dv.getUint32(p + 42, true);
    const next = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (next > cdSize) fail(`name, extra field and comment (${nameLen + extraLen + commentLen} bytes) run past the central directory's end`, at0);
    let name: string;
    try {
      name = names.decode(cdBytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen));
    } catch {
      fail('entry name is not valid UTF-8', at0);
    }
    const eat = `${where}: zip entry '${name}'`;
    // zip64 extended information (header id 1): 64-bit values for the fields saturated at 0xFFFFFFFF, in this order.
    for (let q = p + CENTRAL_SIZE + nameLen; q + 4 <= p + CENTRAL_SIZE + nameLen + extraLen; ) {
      const id = dv.getUint16(q, true);
      const sz = dv.getUint16(q + 2, true);
      const end = q + 4 + sz;
      if (end > p + CENTRAL_SIZE + nameLen + extraLen) fail('extra field runs past its declared length', eat);
      if (id === 1) {
        let r = q + 4;
        const take = (what: string): number => {
          if (r + 8 > end) fail(`zip64 extra field too short for the ${what}`, eat);
          const v = u64(dv, r, `zip64 ${what}`, eat);
          r += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take('uncompressed size');
        if (csize === 0xffffffff) csize = take('compressed size');
        if (localOffset === 0xffffffff) localOffset = take('local header offset');
      }
      q = end;
    }
    if (flags & 1) fail('encrypted entries are not supported', eat);
    if (method !== 0) fail(`entry is compressed (method ${method}${method === 8 ? ', deflate' : ''}); only stored entries are supported, as torch.save writes them`, eat);
    if (csize !== usize) fail(`stored entry has compressed size ${csize} but uncompressed size ${usize}`, eat);
    if (localOffset + LOCAL_SIZE > cdOffset) fail(`local header offset ${localOffset} runs past the start of the central directory (${cdOffset})`, eat);
    const local = at(localOffset, LOCAL_SIZE);
    if (local.getUint32(0, true) !== SIG_LOCAL) fail(`no local header signature at offset ${localOffset}`, eat);
    const localName = local.getUint16(26, true);
    const localExtra = local.getUint16(28, true);
    const dataOffset = localOffset + LOCAL_SIZE + localName + localExtra;
    if (dataOffset + csize > cdOffset) fail(`data (offset ${dataOffset}, ${csize} bytes) runs past the start of the central directory (${cdOffset}): truncated?`, eat);
    if (byName.has(name)) fail('entry name appears twice', eat);
    const entry: ZipEntry = { name, headerOffset: localOffset, dataOffset, size: csize, crc32 };
    entries.push(entry);
    byName.set(name, entry);
    p = next;
  }

  return {
    entries,
    byName,
    source: src,
    read(entry: ZipEntry, opts: { checkCrc?: boolean } = {}): Uint8Array {
      const data = src.read(entry.dataOffset, entry.size);
      if (opts.checkCrc !== false) checkCrc(entry, data, where);
      return data;
    },
  };
}

/** Throws unless `data` (an entry's whole data) has the CRC-32 its directory entry states. */
export function checkCrc(entry: ZipEntry, data: Uint8Array, where: string): void {
  const got = crc32(data);
  if (got !== entry.crc32) fail(`CRC-32 mismatch (stored ${hex(entry.crc32)}, computed ${hex(got)}): the file is damaged`, `${where}: zip entry '${entry.name}'`);
}

const hex = (v: number) => `0x${v.toString(16).padStart(8, '0')}`;

let CRC_TABLE: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zip stores it. */
export function crc32(data: Uint8Array, crc = 0): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256 * 4);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
    // Slicing-by-4 tables: table[k][n] advances table[k-1][n] by one zero byte.
    for (let n = 0; n < 256; n++) {
      for (let k = 1; k < 4; k++) {
        const prev = CRC_TABLE[(k - 1) * 256 + n];
        CRC_TABLE[k * 256 + n] = (CRC_TABLE[prev & 0xff] ^ (prev >>> 8)) >>> 0;
      }
    }
  }
  const T = CRC_TABLE;
  let c = ~crc >>> 0;
  let i = 0;
  const n4 = data.length & ~3;
  for (; i < n4; i += 4) {
    c ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    c = T[768 + (c & 0xff)] ^ T[512 + ((c >>> 8) & 0xff)] ^ T[256 + ((c >>> 16) & 0xff)] ^ T[c >>> 24];
  }
  for (; i < data.length; i++) c = T[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * Writes a stored zip laid out exactly as PyTorch's `PyTorchStreamWriter` (miniz) does:
 * version fields 0, flags 0x0808 (data descriptor follows, UTF-8 names), zeroed time/date,
 * local headers without sizes, an "FB" extra field of 'Z's that puts every record's data at
 * a multiple of 64 bytes, a 16-byte data descriptor after each record, a central directory
 * without extra fields, then the zip64 end-of-central-directory record, its locator and the
 * classic end-of-central-directory record. Archives of 4 GiB or more are refused (that
 * would need zip64 sizes in every header; a JS buffer cannot hold one anyway on Node 20).
 */
export function writeZip(records: { name: string; data: Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder();
  const names = records.map((r) => enc.encode(r.name));
  // Pass 1: layout.
  const offsets: number[] = [];
  const paddings: number[] = [];
  let pos = 0;
  for (let i = 0; i < records.length; i++) {
    offsets.push(pos);
    const start = pos + LOCAL_SIZE + names[i].length + 4; // data would start here with an empty "FB" field
    const pad = (TORCH_ALIGNMENT - (start % TORCH_ALIGNMENT)) % TORCH_ALIGNMENT;
    paddings.push(pad);
    pos = start + pad + records[i].data.length + 16;
  }
  const cdOffset = pos;
  let cdSize = 0;
  for (const n of names) cdSize += CENTRAL_SIZE + n.length;
  const total = cdOffset + cdSize + 56 + 20 + EOCD_SIZE;
  if (total > 0xfffffffe || records.length >= 0xffff) throw new DitMoeError(`the checkpoint would be ${total} bytes in ${records.length} records; archives of 4 GiB or 65535 records and more are not supported by this writer`);

  // Pass 2: bytes.
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const crcs: number[] = [];
  for (let i = 0; i < records.length; i++) {
    let p = offsets[i];
    dv.setUint32(p, SIG_LOCAL, true);
    dv.setUint16(p + 6, 0x0808, true);
    dv.setUint16(p + 26, names[i].length, true);
    dv.setUint16(p + 28, 4 + paddings[i], true);
    out.set(names[i], p + LOCAL_SIZE);
    p += LOCAL_SIZE + names[i].length;
    out[p] = 0x46; // 'F'
    out[p + 1] = 0x42; // 'B'
    dv.setUint16(p + 2, paddings[i], true);
    out.fill(0x5a, p + 4, p + 4 + paddings[i]); // 'Z'
    p += 4 + paddings[i];
    const data = records[i].data;
    out.set(data, p);
    p += data.length;
    const c = crc32(data);
    crcs.push(c);
    dv.setUint32(p, SIG_DESCRIPTOR, true);
    dv.setUint32(p + 4, c, true);
    dv.setUint32(p + 8, data.length, true);
    dv.setUint32(p + 12, data.length, true);
  }
  let p = cdOffset;
  for (let i = 0; i < records.length; i++) {
    dv.setUint32(p, SIG_CENTRAL, true);
    dv.setUint16(p + 8, 0x0808, true);
    dv.setUint32(p + 16, crcs[i], true);
    dv.setUint32(p + 20, records[i].data.length, true);
    dv.setUint32(p + 24, records[i].data.length, true);
    dv.setUint16(p + 28, names[i].length, true);
    dv.setUint32(p + 42, offsets[i], true);
    out.set(names[i], p + CENTRAL_SIZE);
    p += CENTRAL_SIZE + names[i].length;
  }
  const z64 = p;
  dv.setUint32(p, SIG_ZIP64_EOCD, true);
  dv.setBigUint64(p + 4, 44n, true);
  dv.setUint16(p + 12, 0x031e, true); // version made by, as miniz writes it
  dv.setUint16(p + 14, 0x002d, true); // version needed: 4.5 (zip64)
  dv.setBigUint64(p + 24, BigInt(records.length), true);
  dv.setBigUint64(p + 32, BigInt(records.length), true);
  dv.setBigUint64(p + 40, BigInt(cdSize), true);
  dv.setBigUint64(p + 48, BigInt(cdOffset), true);
  p += 56;
  dv.setUint32(p, SIG_ZIP64_LOCATOR, true);
  dv.setBigUint64(p + 8, BigInt(z64), true);
  dv.setUint32(p + 16, 1, true);
  p += 20;
  dv.setUint32(p, SIG_EOCD, true);
  dv.setUint16(p + 8, records.length, true);
  dv.setUint16(p + 10, records.length, true);
  dv.setUint32(p + 12, cdSize, true);
  dv.setUint32(p + 16, cdOffset, true);
  return out;
}
