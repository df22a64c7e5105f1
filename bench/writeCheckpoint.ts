/**
 * Writes a random-weight checkpoint of any preset in the released formats, streaming (never the
 * whole file in memory), for measuring released-size models without downloading them:
 *   node dist/bench/writeCheckpoint.js --preset XL/2 --dtype F16 --out /tmp/xl.pt
 *   node dist/bench/writeCheckpoint.js --preset G/2 --experts 16 --dtype F16 --out /tmp/g.safetensors
 * `.pt`: laid out as `torch.save` lays it out (data.pkl, byteorder, one 64-byte-aligned record per
 * storage in key order, version; data descriptors; zip64 extra fields for records past 4 GiB and
 * the zip64 end-of-central-directory record and locator); `.safetensors`: the header with the
 * configuration in `__metadata__.config`, the tensors in state_dict order. The weights are uniform
 * in ±0.05 from a 16 MiB pool (each tensor starts at its own place in it): values for timing, not
 * a model. Written to a temporary name, then renamed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { presetConfig, type DiTConfig } from '../ref/config.js';
import { paramSpecs } from '../ref/params.js';
import { numel } from '../core/tensor.js';
import { halfBits, bf16Bits, type DType } from '../io/safetensors.js';
import { ptPickle } from '../io/pt/checkpoint.js';
import { crc32, TORCH_ALIGNMENT } from '../io/pt/zip.js';

const POOL = 16 * 2 ** 20; // bytes
const CHUNK = 16 * 2 ** 20;

function pool(dtype: 'F32' | 'F16' | 'BF16', seed: number): Uint8Array {
  const f = new Float32Array(POOL / 4);
  let a = seed >>> 0;
  for (let i = 0; i < f.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    f[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5) * 0.1;
  }
  if (dtype === 'F32') return new Uint8Array(f.buffer);
  const bits = new Uint32Array(f.buffer);
  const h = new Uint16Array(f.length);
  for (let i = 0; i < h.length; i++) h[i] = dtype === 'F16' ? halfBits(bits[i]) : bf16Bits(bits[i]);
  return new Uint8Array(h.buffer);
}

class Out {
  pos = 0;
  constructor(private fd: number) {}
  write(b: Uint8Array): void {
    let done = 0;
    while (done < b.length) done += fs.writeSync(this.fd, b, done, b.length - done, this.pos + done);
    this.pos += b.length;
  }
}

/** Writes `bytes` bytes of a tensor from the pool (starting at `start`), returning their CRC-32. */
function writeData(out: Out, src: Uint8Array, start: number, bytes: number, crc: boolean): number {
  let c = 0;
  let left = bytes;
  let p = start % src.length & ~7;
  while (left > 0) {
    const n = Math.min(left, CHUNK, src.length - p);
    const piece = src.subarray(p, p + n);
    out.write(piece);
    if (crc) c = crc32(piece, c);
    left -= n;
    p = (p + n) % src.length;
  }
  return c;
}

function hashName(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0) * 8;
}

export interface WriteOptions {
  config: DiTConfig;
  dtype: 'F32' | 'F16' | 'BF16';
  out: string;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Writes the checkpoint; returns its size in bytes. */
export function writeCheckpoint(o: WriteOptions): number {
  const specs = paramSpecs(o.config);
  const es = o.dtype === 'F32' ? 4 : 2;
  const src = pool(o.dtype, o.seed ?? 1);
  const total = specs.reduce((s, p) => s + numel(p.shape) * es, 0);
  const tmp = path.join(path.dirname(path.resolve(o.out)), `.${path.basename(o.out)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  const out = new Out(fd);
  let done = 0;
  try {
    if (o.out.endsWith('.pt')) writePt(out, specs, o, src, es, (n) => o.onProgress?.((done += n), total));
    else writeSafetensors(out, specs, o, src, es, (n) => o.onProgress?.((done += n), total));
    fs.closeSync(fd);
    fs.renameSync(tmp, o.out);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return out.pos;
}

function writeSafetensors(out: Out, specs: ReturnType<typeof paramSpecs>, o: WriteOptions, src: Uint8Array, es: number, progress: (n: number) => void): void {
  const header: Record<string, unknown> = { __metadata__: { config: JSON.stringify(o.config), format: 'pt' } };
  let off = 0;
  for (const s of specs) {
    const b = numel(s.shape) * es;
    header[s.name] = { dtype: o.dtype, shape: s.shape, data_offsets: [off, off + b] };
    off += b;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const jb = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(jb.length), true);
  out.write(len);
  out.write(jb);
  for (const s of specs) {
    const b = numel(s.shape) * es;
    writeData(out, src, hashName(s.name), b, false);
    progress(b);
  }
}

const U32 = 0xffffffff;

function writePt(out: Out, specs: ReturnType<typeof paramSpecs>, o: WriteOptions, src: Uint8Array, es: number, progress: (n: number) => void): void {
  const enc = new TextEncoder();
  const root = 'archive';
  const { pkl, keys } = ptPickle(specs.map((s) => ({ name: s.name, dtype: o.dtype as DType, shape: s.shape })));
  type Rec = { name: Uint8Array; size: number; write: () => number; offset?: number; crc?: number };
  const fixed = (name: string, data: Uint8Array): Rec => ({ name: enc.encode(name), size: data.length, write: () => (out.write(data), crc32(data)) });
  const records: Rec[] = [
    fixed(`${root}/data.pkl`, pkl),
    fixed(`${root}/byteorder`, enc.encode('little')),
    ...keys.map((k): Rec => {
      const s = specs[Number(k)];
      const bytes = numel(s.shape) * es;
      return { name: enc.encode(`${root}/data/${k}`), size: bytes, write: () => { const c = writeData(out, src, hashName(s.name), bytes, true); progress(bytes); return c; } };
    }),
    fixed(`${root}/version`, enc.encode('3\n')),
  ];
  for (const r of records) {
    r.offset = out.pos;
    const start = out.pos + 30 + r.name.length + 4;
    const pad = (TORCH_ALIGNMENT - (start % TORCH_ALIGNMENT)) % TORCH_ALIGNMENT;
    const h = new Uint8Array(30 + r.name.length + 4 + pad);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, 0x04034b50, true);
    dv.setUint16(6, 0x0808, true);
    dv.setUint16(26, r.name.length, true);
    dv.setUint16(28, 4 + pad, true);
    h.set(r.name, 30);
    h.set([0x46, 0x42], 30 + r.name.length); // "FB"
    dv.setUint16(30 + r.name.length + 2, pad, true);
    h.fill(0x5a, 30 + r.name.length + 4);
    out.write(h);
    r.crc = r.write();
    const big = r.size >= U32;
    const d = new DataView(new ArrayBuffer(big ? 24 : 16));
    d.setUint32(0, 0x08074b50, true);
    d.setUint32(4, r.crc, true);
    if (big) {
      d.setBigUint64(8, BigInt(r.size), true);
      d.setBigUint64(16, BigInt(r.size), true);
    } else {
      d.setUint32(8, r.size, true);
      d.setUint32(12, r.size, true);
    }
    out.write(new Uint8Array(d.buffer));
  }
  const cdOffset = out.pos;
  for (const r of records) {
    const ext: bigint[] = [];
    if (r.size >= U32) ext.push(BigInt(r.size), BigInt(r.size));
    if (r.offset! >= U32) ext.push(BigInt(r.offset!));
    const extra = ext.length ? 4 + 8 * ext.length : 0;
    const c = new Uint8Array(46 + r.name.length + extra);
    const dv = new DataView(c.buffer);
    dv.setUint32(0, 0x02014b50, true);
    dv.setUint16(4, 0x002d, true);
    dv.setUint16(6, 0x002d, true);
    dv.setUint16(8, 0x0808, true);
    dv.setUint32(16, r.crc!, true);
    dv.setUint32(20, r.size >= U32 ? U32 : r.size, true);
    dv.setUint32(24, r.size >= U32 ? U32 : r.size, true);
    dv.setUint16(28, r.name.length, true);
    dv.setUint16(30, extra, true);
    dv.setUint32(42, r.offset! >= U32 ? U32 : r.offset!, true);
    c.set(r.name, 46);
    if (extra) {
      dv.setUint16(46 + r.name.length, 1, true);
      dv.setUint16(46 + r.name.length + 2, 8 * ext.length, true);
      ext.forEach((v, i) => dv.setBigUint64(46 + r.name.length + 4 + 8 * i, v, true));
    }
    out.write(c);
  }
  const cdSize = out.pos - cdOffset;
  const z64 = out.pos;
  const t = new DataView(new ArrayBuffer(56 + 20 + 22));
  t.setUint32(0, 0x06064b50, true);
  t.setBigUint64(4, 44n, true);
  t.setUint16(12, 0x031e, true);
  t.setUint16(14, 0x002d, true);
  t.setBigUint64(24, BigInt(records.length), true);
  t.setBigUint64(32, BigInt(records.length), true);
  t.setBigUint64(40, BigInt(cdSize), true);
  t.setBigUint64(48, BigInt(cdOffset), true);
  t.setUint32(56, 0x07064b50, true);
  t.setBigUint64(64, BigInt(z64), true);
  t.setUint32(72, 1, true);
  const e = 76;
  t.setUint32(e, 0x06054b50, true);
  const n16 = records.length >= 0xffff ? 0xffff : records.length;
  t.setUint16(e + 8, n16, true);
  t.setUint16(e + 10, n16, true);
  t.setUint32(e + 12, cdSize >= U32 ? U32 : cdSize, true);
  t.setUint32(e + 16, cdOffset >= U32 ? U32 : cdOffset, true);
  out.write(new Uint8Array(t.buffer));
}

/** The command line: --preset NAME [--experts N] [--dtype F32|F16|BF16] --out FILE(.pt|.safetensors). */
async function main(argv: string[]): Promise<void> {
  const arg = (k: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const preset = arg('--preset');
  const outFile = arg('--out');
  const dtype = (arg('--dtype') ?? 'F32').toUpperCase();
  if (!preset || !outFile || !/\.(pt|safetensors)$/.test(outFile) || !['F32', 'F16', 'BF16'].includes(dtype)) {
    process.stderr.write('usage: writeCheckpoint --preset S/2 [--experts 8] [--dtype F32|F16|BF16] --out FILE.pt|FILE.safetensors\n');
    process.exit(2);
  }
  const experts = arg('--experts');
  const config = presetConfig(preset, experts ? { num_experts: Number(experts) } : {});
  const t0 = Date.now();
  let last = 0;
  const size = writeCheckpoint({
    config, dtype: dtype as WriteOptions['dtype'], out: outFile,
    onProgress: (d, tot) => {
      if (Date.now() - last > 2000) {
        last = Date.now();
        process.stderr.write(`  ${(d / 1e9).toFixed(1)} / ${(tot / 1e9).toFixed(1)} GB\n`);
      }
    },
  });
  process.stderr.write(`${outFile}: ${(size / 1e9).toFixed(2)} GB in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]).replace(/\.ts$/, '.js').endsWith(path.join('bench', 'writeCheckpoint.js'))) await main(process.argv.slice(2));
