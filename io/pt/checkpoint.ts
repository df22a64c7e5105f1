/**
 * PyTorch checkpoints (`torch.save`, PyTorch ≥ 1.6 zip format) to and from state dicts of
 * StTensor, without Python. Bytes in, bytes out: runs in a browser as well as in Node.
 *
 * A checkpoint is a zip holding `<root>/data.pkl` (the pickled object), `<root>/data/<key>`
 * (one raw little-endian record per storage), `<root>/version` and, since PyTorch 2.1,
 * `<root>/byteorder`. The root folder's name varies (the file's base name in 1.x,
 * `archive` in 2.x), so it is found from where `data.pkl` sits.
 *
 * Reading: the pickle is decoded by the safe unpickler (io/pt/unpickle.ts); each tensor is a
 * strided view (storage, offset, size, stride) and is materialised contiguous, row-major.
 * float16/bfloat16 are widened to Float32Array with their dtype kept ('F16'/'BF16'); Long
 * is 'I64' (BigInt64Array), Int 'I32', Double 'F64'. A training checkpoint (a dict with
 * `model`/`ema`, next to `opt`, `args`, `step`...) yields the `ema` weights by default, like
 * the official `find_model`, or `model` when there is no `ema`; `weights` chooses.
 */
import { DitMoeError } from '../../core/errors.js';
import { numel } from '../../core/tensor.js';
import { halfBits, bf16Bits, type DType, type StTensor } from '../safetensors.js';
import { memorySource, type ByteSource } from '../byteSource.js';
import { ELEMENT_BYTES, rawView, readRawTensor, toStTensor, type RawData, type RawTensor, type TensorFile, type TensorRef } from '../tensorFile.js';
import { indexZip, writeZip } from './zip.js';
import { unpickle, describe, PtStorageRef, PtTensorRef, PyObject, type PyValue } from './unpickle.js';
import { argsConfig, carriedConfig } from './stateDictConfig.js';
import { pickle, PickleCall, PickleDict, PickleGlobal, PicklePersistent, PickleTuple, type PickleValue } from './pickle.js';

export type PtScalar = number | string | boolean | null;

export interface PtReadOptions {
  /** For a training checkpoint: which weights to return (default: `ema` if present, else `model`). */
  weights?: 'model' | 'ema';
  /** Verify each zip record's CRC-32 (default true). */
  checkCrc?: boolean;
}

export interface PtCheckpoint {
  /** The state dict, in the checkpoint's order, every tensor contiguous. */
  stateDict: Map<string, StTensor>;
  /**
   * String metadata in the manner of safetensors' `__metadata__`: `config` (JSON) when the
   * checkpoint carries a `config` entry, and every top-level scalar (e.g. `step`) as text.
   */
  metadata: Record<string, string>;
  /** The entry of a training checkpoint the tensors came from; undefined for a bare state dict. */
  weights?: string;
  /** The top-level keys of a training checkpoint (empty for a bare state dict). */
  keys: string[];
  /** Top-level entries of a training checkpoint that are plain scalars (e.g. `step`). */
  scalars: Record<string, PtScalar>;
  /** The training script's `args` (argparse.Namespace or dict), scalar and list-of-scalar fields only. */
  args?: Record<string, PtScalar | PtScalar[]>;
  /** Names in the state dict whose values are not tensors (ignored). */
  skipped: string[];
  /** The zip's root folder. */
  root: string;
}

/** Materialised tensors may take at most this multiple of the file's size (float16 doubles; tied weights repeat). */
const OUTPUT_BUDGET_FACTOR = 4;
const OUTPUT_BUDGET_SLACK = 1 << 20;

/** A checkpoint opened by its zip directory and pickle: its tensors not read yet. */
export interface PtIndex extends Omit<PtCheckpoint, 'stateDict'> {
  file: TensorFile;
}

/** Reads a `torch.save` checkpoint held in memory. `where` (usually the file name) prefixes every error. */
export function readPtCheckpoint(bytes: Uint8Array, where = 'checkpoint.pt', opts: PtReadOptions = {}): PtCheckpoint {
  const { file, ...rest } = indexPtCheckpoint(memorySource(bytes, where), where, opts);
  // Materialised tensors are fresh arrays: bound what overlapping views could make us allocate.
  const budget = OUTPUT_BUDGET_FACTOR * bytes.length + OUTPUT_BUDGET_SLACK;
  let spent = 0;
  const stateDict = new Map<string, StTensor>();
  for (const t of file.tensors.values()) {
    spent += numel(t.shape) * Math.max(4, ELEMENT_BYTES[t.dtype]);
    if (spent > budget) throw new DitMoeError(`the tensors would take more than ${budget} bytes, ${OUTPUT_BUDGET_FACTOR}× the file: overlapping views?`, where);
    stateDict.set(t.name, toStTensor(readRawTensor(file, t)));
  }
  return { stateDict, ...rest };
}

/**
 * Opens a `torch.save` checkpoint from a byte source: the zip directory and the pickle are read
 * and checked (every tensor's view against its storage, every storage against its record), the
 * tensors' data is not. Each tensor reads the byte range of its storage that its view spans.
 */
export function indexPtCheckpoint(src: ByteSource, where = 'checkpoint.pt', opts: PtReadOptions = {}): PtIndex {
  const zip = indexZip(src, where);
  const pkls = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length === 0) {
    if (zip.entries.some((e) => /(^|\/)(constants\.pkl|code\/)/.test(e.name))) throw new DitMoeError('this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save its state_dict() with torch.save', where);
    throw new DitMoeError("no '<root>/data.pkl' in the zip: not a torch.save checkpoint", where);
  }
  if (pkls.length > 1) throw new DitMoeError(`the zip holds ${pkls.length} data.pkl records (${pkls.map((e) => e.name).join(', ')})`, where);
  const root = pkls[0].name.slice(0, -'/data.pkl'.length);
  const checkCrc = opts.checkCrc !== false;

  let littleEndian = true;
  const bo = zip.byName.get(`${root}/byteorder`);
  if (bo) {
    const s = new TextDecoder().decode(zip.read(bo, { checkCrc })).trim();
    if (s !== 'little' && s !== 'big') throw new DitMoeError(`byteorder record says '${s.slice(0, 20)}', expected 'little' or 'big'`, where);
    littleEndian = s === 'little';
  }

  const top = unpickle(zip.read(pkls[0], { checkCrc }), { where: `${where}: ${pkls[0].name}` });
  const tensors = new Map<string, TensorRef>();
  const out: PtIndex = { file: { format: 'pt', source: src, where, tensors, metadata: {} }, metadata: {}, keys: [], scalars: {}, skipped: [], root };
  out.metadata = out.file.metadata;

  // Which dict is the state dict?
  if (!(top instanceof Map)) throw new DitMoeError(`the checkpoint holds ${describe(top)}, not a state dict`, where);
  let sd: Map<PyValue, PyValue> = top;
  const nestedKeys = ['ema', 'model', 'state_dict'].filter((k) => top.get(k) instanceof Map);
  if (nestedKeys.length) {
    out.keys = [...top.keys()].map((k) => String(k));
    const pick = opts.weights ?? nestedKeys[0];
    const chosen = top.get(pick);
    if (!(chosen instanceof Map)) throw new DitMoeError(`has no '${pick}' weights (its entries: ${out.keys.join(', ')})`, where);
    sd = chosen;
    out.weights = pick;
    for (const [k, v] of top) {
      if (typeof k !== 'string') continue;
      const s = scalar(v);
      if (s === undefined) continue;
      out.scalars[k] = s;
      if (s !== null) out.metadata[k] = String(s);
    }
    const args = top.get('args');
    const argState = args instanceof PyObject ? args.state : args;
    if (argState instanceof Map) out.args = plainRecord(argState);
    const config = top.get('config') ?? argsConfig(argState);
    if (config instanceof Map) out.metadata.config = JSON.stringify(plainRecord(config));
  } else if (opts.weights) {
    throw new DitMoeError(`weights '${opts.weights}' asked for, but the checkpoint is a bare state dict (no model/ema entries)`, where);
  } else {
    const config = carriedConfig(top);
    if (config !== undefined) out.metadata.config = config;
  }

  for (const [k, v] of sd) {
    if (typeof k !== 'string') throw new DitMoeError(`state dict key ${describe(k)} is not a string`, where);
    if (!(v instanceof PtTensorRef)) {
      out.skipped.push(k);
      continue;
    }
    const at = `${where}: tensor '${k}'`;
    const st = v.storage;
    if (st.dtype === 'U8') throw new DitMoeError('is built on an untyped (byte) storage; only Float, Half, BFloat16, Double, Long and Int storages are supported', at);
    const entry = zip.byName.get(`${root}/data/${st.key}`);
    if (!entry) throw new DitMoeError(`its storage '${st.key}' is missing from the archive (no ${root}/data/${st.key})`, at);
    const es = ELEMENT_BYTES[st.dtype];
    if (entry.size < st.numel * es) throw new DitMoeError(`storage '${st.key}' holds ${entry.size} bytes, but declares ${st.numel} elements of ${st.dtype} (${st.numel * es} bytes)`, at);
    const n = viewElements(v, at);
    // the span of the storage the view reaches: elements [first, last]
    let first = v.offset;
    let last = v.offset;
    for (let i = 0; i < v.shape.length; i++) {
      if (v.shape[i] === 0) continue;
      const reach = (v.shape[i] - 1) * v.stride[i];
      if (reach < 0) first += reach;
      else last += reach;
    }
    const offset = entry.dataOffset + (n === 0 ? 0 : first * es);
    const bytes = n === 0 ? 0 : (last - first + 1) * es;
    const whole = offset === entry.dataOffset && bytes === entry.size;
    tensors.set(k, {
      name: k,
      dtype: st.dtype as DType,
      shape: [...v.shape],
      offset,
      bytes,
      crc32: checkCrc && whole ? entry.crc32 : undefined,
      contiguous: littleEndian && isContiguous(v.shape, v.stride),
      decode: (range) => materialise(v, n, first, range, littleEndian),
    });
  }
  return out;
}

/** Checks the view fits its storage; returns its element count. */
export function viewElements(t: PtTensorRef, at: string): number {
  const st: PtStorageRef = t.storage;
  let n = 1;
  for (const d of t.shape) {
    n *= d;
    if (n > st.numel) break;
  }
  if (t.shape.includes(0)) return 0;
  if (n > st.numel) throw new DitMoeError(`shape [${t.shape.join(', ')}] has more elements than its storage '${st.key}' (${st.numel}); broadcast (stride-0) views are not supported`, at);
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) {
    last += (t.shape[i] - 1) * t.stride[i];
    if (last >= st.numel) break;
  }
  if (last >= st.numel) {
    throw new DitMoeError(`storage '${st.key}' is shorter than the tensor needs: ${st.numel} elements, the view (offset ${t.offset}, shape [${t.shape.join(', ')}], stride [${t.stride.join(', ')}]) reaches element ${last}`, at);
  }
  return n;
}

/**
 * A strided view → a contiguous row-major tensor of n elements in its stored dtype, from the
 * bytes of the storage from element `first` on: a view of them when contiguous and little-endian.
 */
export function materialise(t: PtTensorRef, n: number, first: number, raw: Uint8Array, littleEndian: boolean): RawTensor {
  const dtype = t.storage.dtype as DType;
  const es = ELEMENT_BYTES[dtype];
  const shape = [...t.shape];
  if (n === 0 || (isContiguous(shape, t.stride) && littleEndian)) return { dtype, shape, data: rawView(raw.subarray(0, n * es), dtype) };

  // General case: walk the multi-index (an odometer over the shape), reading each element.
  const data = allocate(dtype, n);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const read = reader(dtype, dv, littleEndian);
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let src = t.offset - first;
  for (let i = 0; i < n; i++) {
    (data as Float32Array)[i] = read(src) as number;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        src += t.stride[d];
        break;
      }
      src -= (shape[d] - 1) * t.stride[d];
      idx[d] = 0;
    }
  }
  return { dtype, shape, data };
}

/** Whether a view of this shape and stride is row-major contiguous (size-1 dimensions' strides do not matter). */
function isContiguous(shape: number[], stride: number[]): boolean {
  for (let i = shape.length - 1, want = 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== want) return false;
    want *= shape[i];
  }
  return true;
}

function allocate(dtype: DType, n: number): RawData {
  switch (dtype) {
    case 'F64': return new Float64Array(n);
    case 'I64': return new BigInt64Array(n);
    case 'I32': return new Int32Array(n);
    case 'F16':
    case 'BF16': return new Uint16Array(n);
    default: return new Float32Array(n);
  }
}

/** Element `i` of a storage as the raw array stores it (F16/BF16: their bits). */
function reader(dtype: DType, dv: DataView, le: boolean): (i: number) => number | bigint {
  switch (dtype) {
    case 'F32': return (i) => dv.getFloat32(4 * i, le);
    case 'F64': return (i) => dv.getFloat64(8 * i, le);
    case 'I64': return (i) => dv.getBigInt64(8 * i, le);
    case 'I32': return (i) => dv.getInt32(4 * i, le);
    case 'F16':
    case 'BF16': return (i) => dv.getUint16(2 * i, le);
  }
}

function scalar(v: PyValue): PtScalar | undefined {
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v.toString();
  return undefined;
}

/** The scalar and list-of-scalar fields of a dict with string keys. */
function plainRecord(m: Map<PyValue, PyValue>): Record<string, PtScalar | PtScalar[]> {
  const r: Record<string, PtScalar | PtScalar[]> = {};
  for (const [k, v] of m) {
    if (typeof k !== 'string') continue;
    const s = scalar(v);
    if (s !== undefined) r[k] = s;
    else if (Array.isArray(v)) {
      const items = v.map(scalar);
      if (items.every((x) => x !== undefined)) r[k] = items as PtScalar[];
    }
  }
  return r;
}

const STORAGE_CLASS: Record<DType, string> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  F64: 'DoubleStorage',
  I64: 'LongStorage',
  I32: 'IntStorage',
};

export interface PtWriteOptions {
  /** The zip's root folder (default `archive`, as PyTorch 2.x writes for buffers). */
  root?: string;
  /** Nest the state dict under this key of a plain dict (e.g. `ema`, which the official `find_model` reads). */
  nestUnder?: string;
  /** Scalar entries next to the nested state dict (e.g. `{ step: 3 }`); needs `nestUnder`. */
  scalars?: Record<string, PtScalar>;
  /** The state dict's type: `OrderedDict` (default, as `module.state_dict()`) or a plain `dict` (a comprehension over one). */
  dictType?: 'OrderedDict' | 'dict';
  /** Write the `byteorder` record (default true, as PyTorch ≥ 2.1; older versions omit it). */
  byteorder?: boolean;
  /** The state dict's attributes, set by BUILD (`_metadata`, which `load_state_dict` reads per module prefix). */
  attributes?: PickleValue;
}

/**
 * Writes a checkpoint that `torch.load` reads: an OrderedDict of `_rebuild_tensor_v2`
 * tensors pickled with protocol 2, one storage per tensor (contiguous, offset 0), in a zip
 * laid out as `torch.save` lays it out (data.pkl, byteorder, data/<key> in key order, version).
 */
export function writePtCheckpoint(stateDict: Map<string, StTensor>, opts: PtWriteOptions = {}): Uint8Array {
  const storages: PtStorageOut[] = [];
  const entries: [string, PickleValue][] = [];
  for (const [name, t] of stateDict) entries.push([name, pickleTensor(t, name, storages)]);
  return ptArchive(nested(new PickleDict(entries, (opts.dictType ?? 'OrderedDict') === 'OrderedDict', opts.attributes), opts), storages, opts);
}

/**
 * The pickle of a state dict of `_rebuild_tensor_v2` tensors, one storage per tensor
 * (contiguous, offset 0, storage key = its index), and the storage keys in the order
 * torch.save writes their records (sorted as strings: 0, 1, 10, 11, ..., 2, ...). For writers
 * that stream the storages themselves (bench/writeCheckpoint.ts).
 */
export function ptPickle(tensors: { name: string; dtype: DType; shape: number[] }[], opts: PtWriteOptions = {}): { pkl: Uint8Array; keys: string[] } {
  const entries = tensors.map(({ name, dtype, shape }, i): [string, PickleValue] => [name, rebuildTensor(String(i), dtype, shape, name)]);
  const obj = nested(new PickleDict(entries, (opts.dictType ?? 'OrderedDict') === 'OrderedDict', opts.attributes), opts);
  const keys = tensors.map((_, i) => String(i)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { pkl: pickle(obj), keys };
}

/** The state dict as written: alone, or nested under `opts.nestUnder` next to `opts.scalars`. */
function nested(obj: PickleValue, opts: PtWriteOptions): PickleValue {
  if (opts.nestUnder !== undefined) {
    const top: [string, PickleValue][] = [[opts.nestUnder, obj]];
    for (const [k, v] of Object.entries(opts.scalars ?? {})) {
      if (k === opts.nestUnder) throw new DitMoeError(`scalar entry '${k}' collides with the nested state dict`);
      top.push([k, v]);
    }
    return new PickleDict(top, false);
  }
  if (opts.scalars && Object.keys(opts.scalars).length) throw new DitMoeError('scalar entries need a nested checkpoint (nestUnder)');
  return obj;
}

/** A storage to write: its key (the zip record `<root>/data/<key>`) and raw bytes. */
export interface PtStorageOut {
  key: string;
  data: Uint8Array;
}

/** `_rebuild_tensor_v2(storage <key>, 0, size, stride, False, OrderedDict())` over a contiguous storage of the tensor's elements. */
function rebuildTensor(key: string, dtype: DType, shape: number[], name: string): PickleValue {
  if (!Object.hasOwn(STORAGE_CLASS, dtype)) throw new DitMoeError(`dtype ${dtype} cannot be written to a .pt`, `tensor '${name}'`);
  const stride: number[] = new Array(shape.length);
  let n = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    stride[d] = n;
    n *= shape[d];
  }
  const pid = new PickleTuple(['storage', new PickleGlobal('torch', STORAGE_CLASS[dtype]), key, 'cpu', n]);
  const args: PickleValue[] = [new PicklePersistent(pid), 0, new PickleTuple(shape), new PickleTuple(stride), false, new PickleCall('collections', 'OrderedDict', [])];
  return new PickleCall('torch._utils', '_rebuild_tensor_v2', args);
}

/**
 * A tensor as `torch.save` pickles it: `_rebuild_tensor_v2` over a new contiguous storage,
 * appended to `storages` under the next key.
 */
export function pickleTensor(t: StTensor, name: string, storages: PtStorageOut[]): PickleValue {
  const key = String(storages.length);
  const call = rebuildTensor(key, t.dtype, t.shape, name);
  storages.push({ key, data: encode(t, name) });
  return call;
}

/** The zip of a pickled object and its storages, as `torch.save` lays it out. */
export function ptArchive(obj: PickleValue, storages: PtStorageOut[], opts: { root?: string; byteorder?: boolean } = {}): Uint8Array {
  const root = opts.root ?? 'archive';
  if (!/^[A-Za-z0-9_.-]+$/.test(root)) throw new DitMoeError(`zip root folder '${root}' must be a simple name`);
  const records = [
    { name: `${root}/data.pkl`, data: pickle(obj) },
    ...(opts.byteorder === false ? [] : [{ name: `${root}/byteorder`, data: new TextEncoder().encode('little') }]),
    // torch.save writes the storages sorted by key as strings: 0, 1, 10, 11, ..., 2, ...
    ...[...storages]
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((s) => ({ name: `${root}/data/${s.key}`, data: s.data })),
    { name: `${root}/version`, data: new TextEncoder().encode('3\n') },
  ];
  return writeZip(records);
}

/** A tensor's elements as little-endian bytes of its dtype. */
function encode(t: StTensor, name: string): Uint8Array {
  let n = 1;
  for (const d of t.shape) n *= d;
  if (t.data.length !== n) throw new DitMoeError(`data has ${t.data.length} elements, shape [${t.shape.join(', ')}] needs ${n}`, `tensor '${name}'`);
  if (!(t.dtype in STORAGE_CLASS) || !Object.hasOwn(STORAGE_CLASS, t.dtype)) throw new DitMoeError(`dtype ${t.dtype} cannot be written to a .pt`, `tensor '${name}'`);
  // A view of the caller's array (no copy): writeZip only reads it.
  const viewOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (t.dtype) {
    case 'F32': return viewOf(t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number));
    case 'F64': return viewOf(t.data instanceof Float64Array ? t.data : Float64Array.from(t.data as ArrayLike<number>, Number));
    case 'I32': return viewOf(t.data instanceof Int32Array ? t.data : Int32Array.from(t.data as ArrayLike<number>, Number));
    case 'I64': return viewOf(t.data instanceof BigInt64Array ? t.data : BigInt64Array.from(t.data as ArrayLike<number>, (v) => BigInt(Math.round(Number(v)))));
    case 'F16':
    case 'BF16': {
      const f = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
      const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
      const h = new Uint16Array(n);
      if (t.dtype === 'F16') for (let i = 0; i < n; i++) h[i] = halfBits(bits[i]);
      else for (let i = 0; i < n; i++) h[i] = bf16Bits(bits[i]);
      return new Uint8Array(h.buffer);
    }
  }
}

export { halfBits, bf16Bits };
