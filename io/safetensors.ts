/**
 * safetensors read and write (https://github.com/huggingface/safetensors):
 *   [u64 little-endian N][N bytes of JSON header][raw little-endian tensor bytes]
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets
 * relative to the start of the byte buffer), plus an optional "__metadata__" of string→string.
 *
 * Works on bytes only (no file system), so it runs in a browser as well as in Node.
 * F16 and BF16 are widened to Float32Array on load; the original dtype is kept.
 */
import { DitMoeError } from '../core/errors.js';
import { numel, shapeStr } from '../core/tensor.js';
import { halfToFloat, bf16ToFloat, floatToHalf, floatToBf16, type DType, type StTensor, type TensorData } from '../core/dtype.js';
import { memorySource, type ByteSource } from './byteSource.js';

// The dtypes and their conversions live in core/dtype.ts (ref/ uses them too); re-exported here
// so that a format's users find them where they read the format.
export { halfToFloat, bf16ToFloat, halfBits, bf16Bits, floatToHalf, floatToBf16, asFloat32, asNumbers, type DType, type TensorData, type StTensor } from '../core/dtype.js';

export interface SafeTensors {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 };
/** No real header is this large; refusing it bounds what a corrupt length can make us allocate. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function fail(what: string, where: string): never {
  throw new DitMoeError(what, where);
}

/** One tensor of a safetensors file: where its bytes lie (absolute offsets in the file). */
export interface StEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offset of its data in the file, and its length in bytes. */
  offset: number;
  bytes: number;
}

export interface SafetensorsIndex {
  entries: StEntry[];
  metadata: Record<string, string>;
}

/**
 * Reads and checks a safetensors file's header from a byte source, without reading any tensor:
 * every entry's dtype, shape and offsets are validated against each other and the file's size
 * (a truncated file is reported here). `where` (usually the file name) prefixes every error.
 */
export function indexSafetensors(src: ByteSource, where = 'safetensors'): SafetensorsIndex {
  const size = src.size;
  if (size < 8) fail(`file is ${size} bytes, shorter than the 8-byte header length`, where);
  const head = src.read(0, 8);
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(size - 8)) fail(`header length ${n64} runs past the end of the file (${size} bytes): truncated or not a safetensors file`, where);
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} is larger than ${MAX_HEADER_BYTES} bytes`, where);
  if (n < 2) fail(`header length ${n} is too short for a JSON object`, where);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n)));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`, where);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object', where);
  const dataStart = 8 + n;
  const dataLen = size - dataStart;
  const metadata: Record<string, string> = {};
  const entries: StEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object', where);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`, where);
        metadata[k] = v;
      }
      continue;
    }
    const at = `${where}: tensor '${name}'`;
    if (typeof raw !== 'object' || raw === null) fail('entry is not an object', at);
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, e.dtype)) fail(`unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`, at);
    const dtype = e.dtype as DType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`, at);
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`data_offsets ${JSON.stringify(off)} is not a pair of non-negative integers`, at);
    const [begin, end] = off as number[];
    if (begin > end) fail(`data_offsets [${begin}, ${end}] run backwards`, at);
    if (end > dataLen) fail(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes): file truncated?`, at);
    const want = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== want) fail(`holds ${end - begin} bytes but shape ${shapeStr(shape)} of ${dtype} needs ${want}`, at);
    entries.push({ name, dtype, shape, offset: dataStart + begin, bytes: end - begin });
  }
  const sorted = [...entries].sort((a, b) => a.offset - b.offset || a.bytes - b.bytes);
  let covered = dataStart;
  for (const e of sorted) {
    if (e.offset < covered) fail(`tensor '${e.name}' (bytes ${e.offset - dataStart}..${e.offset - dataStart + e.bytes}) overlaps another tensor`, where);
    if (e.offset > covered) fail(`bytes ${covered - dataStart}..${e.offset - dataStart} of the data belong to no tensor`, where);
    covered = e.offset + e.bytes;
  }
  if (covered !== size) fail(`the last ${size - covered} bytes of the data belong to no tensor`, where);
  return { entries, metadata };
}

/** Parses a safetensors file held in memory (F16/BF16 widened to float32, their dtype kept). `where` prefixes every error. */
export function parseSafetensors(bytes: Uint8Array, where = 'safetensors'): SafeTensors {
  return readSafetensors(memorySource(bytes, where), where);
}

/** Reads every tensor of a safetensors source, one read per tensor. */
export function readSafetensors(src: ByteSource, where = 'safetensors'): SafeTensors {
  const { entries, metadata } = indexSafetensors(src, where);
  const tensors = new Map<string, StTensor>();
  for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(src.read(e.offset, e.bytes), e.dtype) });
  return { tensors, metadata };
}

function decode(src: Uint8Array, dtype: DType): TensorData {
  // Copy into a fresh, aligned buffer; the file's offsets need not be aligned.
  const copy = new Uint8Array(src.length);
  copy.set(src);
  const buf = copy.buffer;
  switch (dtype) {
    case 'F32': return new Float32Array(buf);
    case 'F64': return new Float64Array(buf);
    case 'I64': return new BigInt64Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'F16': return widenHalf(new Uint16Array(buf), halfToFloat);
    case 'BF16': return widenHalf(new Uint16Array(buf), bf16ToFloat);
  }
}

function widenHalf(h: Uint16Array, conv: (b: number) => number): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = conv(h[i]);
  return out;
}

function encode(t: StTensor, name: string): Uint8Array {
  const n = numel(t.shape);
  if (t.data.length !== n) throw new DitMoeError(`data has ${t.data.length} elements, shape ${shapeStr(t.shape)} needs ${n}`, `tensor '${name}'`);
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (t.dtype) {
    case 'F32': return asBytes(t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>));
    case 'F64': return asBytes(t.data instanceof Float64Array ? t.data : Float64Array.from(t.data as ArrayLike<number>));
    case 'I32': return asBytes(t.data instanceof Int32Array ? t.data : Int32Array.from(t.data as ArrayLike<number>, (v) => Number(v)));
    case 'I64': return asBytes(t.data instanceof BigInt64Array ? t.data : BigInt64Array.from(t.data as ArrayLike<number>, (v) => BigInt(Math.round(Number(v)))));
    case 'F16':
    case 'BF16': {
      const conv = t.dtype === 'F16' ? floatToHalf : floatToBf16;
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = conv(Number(t.data[i]));
      return asBytes(h);
    }
  }
}

/**
 * Serialises tensors (in the given order) with optional string metadata. The header is
 * padded with spaces to a multiple of 8 bytes, as the reference implementation does.
 */
export function serializeSafetensors(tensors: Map<string, StTensor> | [string, StTensor][], metadata?: Record<string, string>): Uint8Array {
  const list = tensors instanceof Map ? [...tensors.entries()] : tensors;
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new DitMoeError('a tensor may not be called __metadata__');
    const b = encode(t, name);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.length] };
    blobs.push(b);
    off += b.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

export function f32(shape: readonly number[], data: Float32Array): StTensor {
  return { dtype: 'F32', shape: [...shape], data };
}
export function f64(shape: readonly number[], data: Float64Array): StTensor {
  return { dtype: 'F64', shape: [...shape], data };
}
export function i64(shape: readonly number[], data: ArrayLike<number>): StTensor {
  return { dtype: 'I64', shape: [...shape], data: BigInt64Array.from(Array.from(data), (v) => BigInt(v)) };
}
