/**
 * A model file opened for reading by offset: its tensors' names, dtypes, shapes and byte
 * ranges, read one at a time from a byte source (io/byteSource.ts) and kept in their stored
 * dtype (float16/bfloat16 as their 16-bit patterns), widened to float32 where used.
 * `openTensorFile` reads and checks the header (safetensors) or the zip directory and pickle
 * (.pt) only; nothing of a tensor is read before it is asked for.
 */
import { DitMoeError } from '../core/errors.js';
import { halfToFloat, bf16ToFloat, indexSafetensors, type DType, type StTensor } from './safetensors.js';
import type { ByteSource } from './byteSource.js';
import { crc32 } from './pt/zip.js';

/** Elements in their stored dtype: F16 and BF16 as Uint16Array bit patterns. */
export type RawData = Float32Array | Uint16Array | Float64Array | BigInt64Array | Int32Array;

export interface RawTensor {
  dtype: DType;
  shape: number[];
  data: RawData;
}

export const ELEMENT_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 };

/** One tensor of a file, not read yet. */
export interface TensorRef {
  name: string;
  dtype: DType;
  shape: number[];
  /** The byte range of the file its elements lie in. */
  offset: number;
  bytes: number;
  /** The tensor, contiguous in its stored dtype, from the bytes of its range (a view when it can be). */
  decode(range: Uint8Array): RawTensor;
  /** The CRC-32 of the range, when the file states one for exactly this range (a .pt record). */
  crc32?: number;
  /** Whether the range is the tensor's elements in order, little-endian (decode is a view): a reader may widen it itself. */
  contiguous: boolean;
}

export interface TensorFile {
  format: 'safetensors' | 'pt';
  source: ByteSource;
  /** The file's name, for messages. */
  where: string;
  /** Every tensor, in the file's order. */
  tensors: Map<string, TensorRef>;
  metadata: Record<string, string>;
}

/** The elements of `bytes` as a typed array of `dtype`: a view when aligned, else a copy. */
export function rawView(bytes: Uint8Array, dtype: DType): RawData {
  const es = ELEMENT_BYTES[dtype];
  const n = bytes.byteLength / es;
  if (bytes.byteOffset % es !== 0) bytes = bytes.slice();
  switch (dtype) {
    case 'F32': return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'F16':
    case 'BF16': return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    case 'F64': return new Float64Array(bytes.buffer, bytes.byteOffset, n);
    case 'I64': return new BigInt64Array(bytes.buffer, bytes.byteOffset, n);
    case 'I32': return new Int32Array(bytes.buffer, bytes.byteOffset, n);
  }
}

/** A safetensors source opened by its header. */
export function openSafetensors(src: ByteSource, where: string): TensorFile {
  const { entries, metadata } = indexSafetensors(src, where);
  const tensors = new Map<string, TensorRef>();
  for (const e of entries) tensors.set(e.name, { ...e, contiguous: true, decode: (range) => ({ dtype: e.dtype, shape: e.shape, data: rawView(range, e.dtype) }) });
  return { format: 'safetensors', source: src, where, tensors, metadata };
}

/** Reads one tensor in its stored dtype (`into`: where to read its bytes, of at least its length), checking the CRC-32 when there is one. */
export function readRawTensor(file: TensorFile, t: TensorRef, into?: Uint8Array): RawTensor {
  const range = file.source.read(t.offset, t.bytes, into);
  checkTensorCrc(file, t, range);
  return t.decode(range);
}

/** Throws when a tensor's range does not have the CRC-32 the file states for it. */
export function checkTensorCrc(file: TensorFile, t: TensorRef, range: Uint8Array): void {
  if (t.crc32 === undefined) return;
  const got = crc32(range);
  if (got !== t.crc32) throw new DitMoeError(`CRC-32 mismatch (stored 0x${t.crc32.toString(16).padStart(8, '0')}, computed 0x${got.toString(16).padStart(8, '0')}): the file is damaged`, `${file.where}: tensor '${t.name}'`);
}

let HALF_TABLE: Float32Array | undefined;
let BF16_TABLE: Float32Array | undefined;
/** float16 bits → float32, all 65536 of them. */
export function halfTable(): Float32Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = halfToFloat(h);
  }
  return HALF_TABLE;
}
/** bfloat16 bits → float32, all 65536 of them. */
export function bf16Table(): Float32Array {
  if (!BF16_TABLE) {
    BF16_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) BF16_TABLE[h] = bf16ToFloat(h);
  }
  return BF16_TABLE;
}

/** A raw tensor as float32 (exact for every dtype but F64/I64/I32 beyond 2^24): F32 as is, else widened into `into` or a new array. */
export function widen(t: RawTensor, into?: Float32Array): Float32Array {
  const d = t.data;
  const n = d.length;
  if (t.dtype === 'F32' && !into) return d as Float32Array;
  const out = into ?? new Float32Array(n);
  if (out.length < n) throw new DitMoeError(`widening ${n} elements into ${out.length}`);
  if (t.dtype === 'F16' || t.dtype === 'BF16') {
    const T = t.dtype === 'F16' ? halfTable() : bf16Table();
    const h = d as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = T[h[i]];
  } else if (t.dtype === 'F32') out.set(d as Float32Array);
  else for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  return out;
}

/** A raw tensor as the library's StTensor (F16/BF16 widened to float32, their dtype kept; a fresh array). */
export function toStTensor(t: RawTensor): StTensor {
  const data = t.dtype === 'F16' || t.dtype === 'BF16' ? widen(t) : t.data.slice();
  return { dtype: t.dtype, shape: t.shape, data: data as StTensor['data'] };
}
