/**
 * PyTorch checkpoints without Python: the zip reader/writer, the safe unpickler, tensors from
 * strided views, training checkpoints, the writer's fidelity to torch.save, and `convert`.
 *
 * Independent references: the golden files (written by torch.save, PyTorch 1.13), the
 * pickles in ptFixtures.ts (written by CPython's own pickler), and hand-assembled pickles
 * whose expected tensors are computed here from the view formula
 *   out[i0, ..., ik] = storage[offset + Σ i_d · stride_d].
 * Zip layout facts about the golden files below were read with Python's `zipfile`.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DitMoeError } from '../core/errors.js';
import { parseSafetensors, floatToHalf, halfToFloat, type StTensor } from '../io/safetensors.js';
import { readZip, writeZip, crc32 } from '../io/pt/zip.js';
import { unpickle, PtTensorRef, PyObject, PySet } from '../io/pt/unpickle.js';
import { readPtCheckpoint, writePtCheckpoint, halfBits, bf16Bits } from '../io/pt/checkpoint.js';
import { convertFile } from '../cli/commands/convert.js';
import { GOLDEN_DIR } from './golden.js';
import { TRAIN_PKL, PARAM_PKL, VALS_PKL, POSIX_SYSTEM_PKL, POSIX_SYSTEM4_PKL, EVAL_PKL } from './ptFixtures.js';
import { expectOurError } from './errors.js';

const read = (name: string) => new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, name)));
const PT = read('tiny.model.pt');
const PT16 = read('tiny.model_fp16_nested.pt');
const ST = parseSafetensors(read('tiny.model.safetensors'), 'tiny.model.safetensors');


/** Float32 data as bit patterns, so equality is bitwise (and NaN-safe). */
const bits = (t: StTensor) => new Uint32Array((t.data as Float32Array).slice().buffer);

// ---------------------------------------------------------------------------------------------
// A tiny pickle assembler (opcodes written out by hand, independent of io/pt/pickle.ts).
const enc = new TextEncoder();
const u32le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const OP = { PROTO: 0x80, MARK: 0x28, TUPLE: 0x74, EMPTY_TUPLE: 0x29, REDUCE: 0x52, BINPERSID: 0x51, NEWFALSE: 0x89, SETITEMS: 0x75, STOP: 0x2e, EMPTY_DICT: 0x7d } as const;
const glob = (m: string, n: string) => [0x63, ...enc.encode(`${m}\n${n}\n`)];
const str = (s: string) => {
  const b = enc.encode(s);
  return [0x58, ...u32le(b.length), ...b];
};
const int = (v: number) => [0x4a, ...u32le(v >>> 0)];
const tup = (xs: number[]) => [OP.MARK, ...xs.flatMap(int), OP.TUPLE];
function tensorOps(storage: string, key: string, numel: number, offset: number, shape: number[], stride: number[]): number[] {
  return [
    ...glob('torch._utils', '_rebuild_tensor_v2'),
    OP.MARK,
    ...[OP.MARK, ...str('storage'), ...glob('torch', storage), ...str(key), ...str('cpu'), ...int(numel), OP.TUPLE, OP.BINPERSID],
    ...int(offset),
    ...tup(shape),
    ...tup(stride),
    OP.NEWFALSE,
    ...glob('collections', 'OrderedDict'),
    OP.EMPTY_TUPLE,
    OP.REDUCE,
    OP.TUPLE,
    OP.REDUCE,
  ];
}
function stateDictPickle(items: [string, number[]][]): Uint8Array {
  return Uint8Array.from([OP.PROTO, 2, ...glob('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE, OP.MARK, ...items.flatMap(([n, ops]) => [...str(n), ...ops]), OP.SETITEMS, OP.STOP]);
}
const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
function ptZip(pkl: Uint8Array, storages: Record<string, Uint8Array>, root = 'archive'): Uint8Array {
  return writeZip([{ name: `${root}/data.pkl`, data: pkl }, ...Object.entries(storages).map(([k, data]) => ({ name: `${root}/data/${k}`, data })), { name: `${root}/version`, data: enc.encode('3\n') }]);
}

// ---------------------------------------------------------------------------------------------
describe('golden checkpoints', () => {
  it('tiny.model.pt gives exactly the tensors of tiny.model.safetensors (bitwise)', () => {
    const ck = readPtCheckpoint(PT, 'tiny.model.pt');
    expect(ck.weights).toBeUndefined(); // a bare state dict
    expect(ck.root).toBe('tiny.model');
    expect([...ck.stateDict.keys()].sort()).toEqual([...ST.tensors.keys()].sort());
    for (const [name, want] of ST.tensors) {
      const got = ck.stateDict.get(name)!;
      expect(got.dtype, name).toBe('F32');
      expect(got.shape, name).toEqual(want.shape);
      expect(bits(got), name).toEqual(bits(want));
    }
  });

  it('tiny.model_fp16_nested.pt gives them within float16 rounding and exposes step = 3', () => {
    const ck = readPtCheckpoint(PT16, 'tiny.model_fp16_nested.pt');
    expect(ck.weights).toBe('model'); // no `ema` entry: the `model` weights
    expect(ck.keys).toEqual(['model', 'step']);
    expect(ck.scalars.step).toBe(3);
    expect(ck.metadata.step).toBe('3');
    expect([...ck.stateDict.keys()].sort()).toEqual([...ST.tensors.keys()].sort());
    // Round to nearest float16: 11 significant bits, so |a − b| ≤ 2^-11·|b| for normal
    // values; below 2^-14 the spacing is 2^-24, so the error is at most 2^-25 ≈ 3e-8
    // (6e-8 = one subnormal step leaves room). No weight is near float16's 65504 limit.
    let worst = 0;
    for (const [name, want] of ST.tensors) {
      const got = ck.stateDict.get(name)!;
      expect(got.dtype, name).toBe('F16');
      expect(got.shape, name).toEqual(want.shape);
      const a = got.data as Float32Array;
      const b = want.data as Float32Array;
      for (let i = 0; i < b.length; i++) {
        const err = Math.abs(a[i] - b[i]);
        worst = Math.max(worst, err / (2 ** -11 * Math.abs(b[i]) + 6e-8));
        if (!(err <= 2 ** -11 * Math.abs(b[i]) + 6e-8)) expect.fail(`${name}[${i}]: ${a[i]} vs ${b[i]}`);
        // Stronger: it is exactly the round-to-nearest-even float16 of the float32 weight.
        if (a[i] !== halfToFloat(floatToHalf(b[i]))) expect.fail(`${name}[${i}]: ${a[i]} is not RNE(${b[i]})`);
      }
    }
    expect(worst).toBeGreaterThan(0.01); // the tolerance is not vacuous: the values did get rounded
  });

  it('chooses weights: ema asked for but absent, or model asked for on a bare state dict, is our error', () => {
    expectOurError(() => readPtCheckpoint(PT16, 'x.pt', { weights: 'ema' }), /no 'ema' weights.*model, step/);
    expectOurError(() => readPtCheckpoint(PT, 'x.pt', { weights: 'model' }), /bare state dict/);
  });
});

describe('training checkpoints (pickled by CPython)', () => {
  const f32 = (xs: number[]) => asBytes(Float32Array.from(xs));
  const storages = {
    '0': f32([1, 2, 3, 4, 5, 6]), // model
    '1': f32([10, 20, 30, 40, 50, 60]), // ema
    '3': asBytes(BigInt64Array.from([-1n, 2n ** 40n, 9n])),
    // '2' and '4' (optimizer state) are left out: only the chosen weights are read.
  };
  const file = ptZip(TRAIN_PKL, storages, 'train');

  it('loads ema by default, model on request, and keeps step, loss and args', () => {
    const ck = readPtCheckpoint(file, 'train.pt');
    expect(ck.weights).toBe('ema');
    expect(ck.keys).toEqual(['model', 'ema', 'opt', 'args', 'step', 'loss']);
    expect([...ck.stateDict.keys()]).toEqual(['w', 'b', 'idx']);
    expect(ck.stateDict.get('w')).toEqual({ dtype: 'F32', shape: [2, 2], data: Float32Array.from([10, 20, 30, 40]) });
    expect(ck.stateDict.get('b')).toEqual({ dtype: 'F32', shape: [2], data: Float32Array.from([50, 60]) });
    expect(ck.stateDict.get('idx')).toEqual({ dtype: 'I64', shape: [3], data: BigInt64Array.from([-1n, 2n ** 40n, 9n]) });
    expect(ck.scalars).toEqual({ step: 7, loss: 0.25 });
    expect(ck.metadata).toEqual({ step: '7', loss: '0.25' });
    expect(ck.args).toEqual({ model: 'DiT-S/2', image_size: 256, num_experts: 8, lr: 1e-4, rf: false, results_dir: null, tags: ['a', 'b'] });
    const m = readPtCheckpoint(file, 'train.pt', { weights: 'model' });
    expect(m.weights).toBe('model');
    expect(m.stateDict.get('w')!.data).toEqual(Float32Array.from([1, 2, 3, 4]));
  });

  it('reads nn.Parameter (torch._utils._rebuild_parameter) as its tensor', () => {
    const ck = readPtCheckpoint(ptZip(PARAM_PKL, { '0': f32([0, 1, 2, 3, 4, 5]) }), 'param.pt');
    expect(ck.stateDict.get('w')).toEqual({ dtype: 'F32', shape: [2], data: Float32Array.from([1, 3]) }); // offset 1, stride 2
  });
});

describe('unpickler', () => {
  it.each([2, 3, 4, 5])('decodes plain values of protocol %i as CPython pickled them', (p) => {
    const v = unpickle(VALS_PKL[p]) as Map<unknown, unknown>;
    expect(v).toBeInstanceOf(Map);
    const a = v.get('a') as unknown[];
    expect(a.slice(0, 5)).toEqual([1, 2.5, null, true, false]);
    expect(a[5]).toEqual([3, -4]);
    expect(Object.isFrozen(a[5])).toBe(true); // a tuple
    expect(Object.isFrozen(a)).toBe(false); // a list
    expect(v.get('big')).toBe(2n ** 70n);
    expect(v.get('neg')).toBe(-300);
    expect(v.get('i32')).toBe(-70000);
    expect(v.get('u16')).toBe(40000);
    expect(v.get('b')).toEqual(Uint8Array.from([0x78, 0x79]));
    expect(v.get('u')).toBe('h\u00e9llo \u2603');
    expect(v.get('f')).toBe(-1.5e-300);
    expect(v.get('nested')).toEqual(new Map([['k', [[], [], new Map()]]]));
    expect(v.get(7)).toBe('int key');
    expect(v.get('od')).toEqual(new Map<string, unknown>([['x', 1], ['y', [2]]]));
    const shared = v.get('shared') as unknown[][];
    expect(shared[0]).toEqual([1, 2]);
    expect(shared[0]).toBe(shared[1]); // the memo keeps identity
    expect(v.get('set')).toEqual(new PySet([3], false)); // protocol 2: builtins.set([3]); 4+: EMPTY_SET ADDITEMS
    expect(v.get('fset')).toEqual(new PySet([4], true));
  });

  it('builds argparse.Namespace as a plain data object', () => {
    const v = unpickle(TRAIN_PKL) as Map<string, unknown>;
    const args = v.get('args') as PyObject;
    expect(args).toBeInstanceOf(PyObject);
    expect(args.className).toBe('argparse.Namespace');
    expect((args.state as Map<string, unknown>).get('model')).toBe('DiT-S/2');
    const opt = v.get('opt') as Map<string, unknown>;
    const state = (opt.get('state') as Map<number, Map<string, unknown>>).get(0)!;
    expect(state.get('exp_avg')).toBeInstanceOf(PtTensorRef);
    expect((state.get('step') as PtTensorRef).shape).toEqual([]);
  });

  const attacks: [string, Uint8Array, RegExp][] = [
    ['os.system via posix (protocol 2, GLOBAL)', POSIX_SYSTEM_PKL, /refusing global 'posix\.system'/],
    ['os.system via posix (protocol 4, STACK_GLOBAL)', POSIX_SYSTEM4_PKL, /refusing global 'posix\.system'/],
    ['builtins.eval (written as __builtin__.eval by protocol 2)', EVAL_PKL, /refusing global 'builtins\.eval'/],
    ['os.system by hand', Uint8Array.from([OP.PROTO, 2, ...glob('os', 'system'), ...str('echo pwned'), 0x85, OP.REDUCE, OP.STOP]), /refusing global 'os\.system'/],
    // Refused at the GLOBAL opcode itself: the pickle ends right after it, so nothing could have been called.
    ['a GLOBAL with nothing after it', Uint8Array.from([OP.PROTO, 2, ...glob('os', 'system')]), /refusing global 'os\.system'.*at byte 2/],
    ['INST (protocol 0 call)', Uint8Array.from([OP.MARK, ...str('echo'), 0x69, ...enc.encode('os\nsystem\n'), OP.STOP]), /refusing global 'os\.system'/],
    ['subprocess.Popen inside a state dict', stateDictPickle([['w', [...glob('subprocess', 'Popen'), ...str('ls'), 0x85, OP.REDUCE]]]), /refusing global 'subprocess\.Popen'/],
    ['a whole pickled model', Uint8Array.from([OP.PROTO, 2, ...glob('models', 'DiT'), OP.EMPTY_TUPLE, 0x81, OP.STOP]), /refusing global 'models\.DiT'.*state_dict/],
    ['calling a storage class', Uint8Array.from([OP.PROTO, 2, ...glob('torch', 'FloatStorage'), OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP]), /cannot call torch\.FloatStorage/],
    ['the extension registry', Uint8Array.from([OP.PROTO, 2, 0x82, 1, OP.STOP]), /extension-registry/],
  ];
  it.each(attacks)('refuses %s with our error naming it', (_name, pkl, re) => {
    expectOurError(() => unpickle(pkl, { where: 'evil.pkl' }), re);
    expectOurError(() => readPtCheckpoint(ptZip(pkl, {}), 'evil.pt'), re);
  });

  it('refuses malformed pickles with our error', () => {
    const bad: [number[], RegExp][] = [
      [[OP.PROTO, 2], /without a STOP/],
      [[OP.PROTO, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x41], /truncated/], // BINUNICODE of 2 GB in 1 byte
      [[OP.PROTO, 2, 0x68, 5, OP.STOP], /memo entry 5/],
      [[OP.PROTO, 2, OP.STOP], /underflow/],
      [[OP.PROTO, 2, OP.EMPTY_TUPLE, 0x61, OP.STOP], /underflow/], // APPEND with one item
      [[OP.PROTO, 2, OP.EMPTY_TUPLE, OP.EMPTY_TUPLE, 0x61, OP.STOP], /not a list/],
      [[OP.PROTO, 2, 0x8b, 0xff, 0xff, 0, 0, OP.STOP], /integer of 65535 bytes/],
      [[OP.PROTO, 2, 0xff], /unknown opcode/],
      [[OP.PROTO, 2, OP.TUPLE, OP.STOP], /no mark/],
      [[OP.PROTO, 2, 0x4e, OP.BINPERSID, OP.STOP], /persistent id None/],
    ];
    for (const [b, re] of bad) expectOurError(() => unpickle(Uint8Array.from(b)), re);
  });
});

describe('tensors from strided views', () => {
  const v = Float32Array.from({ length: 30 }, (_, i) => i * 1.25 - 7);
  // float16 bit patterns and their exact values: 1, 2, 0.5, -2, 2^-24 (smallest subnormal), 65504 (largest).
  const halfBitsIn = Uint16Array.from([0x3c00, 0x4000, 0x3800, 0xc000, 0x0001, 0x7bff]);
  const halfVals = [1, 2, 0.5, -2, 2 ** -24, 65504];
  // bfloat16: the upper halves of float32 values that have zero lower halves.
  const bfVals = Float32Array.from([1.5, -3.25, 2 ** 33, 0.15625]);
  const bfIn = Uint16Array.from(new Uint32Array(bfVals.slice().buffer), (u) => u >>> 16);
  const longs = BigInt64Array.from([-1n, 2n ** 40n, 0n, 7n]);
  const doubles = Float64Array.from([Math.PI, -1e-300, 1e300]);
  const ints = Int32Array.from([-5, 2147483647, 3]);
  const pkl = stateDictPickle([
    ['T', tensorOps('FloatStorage', '0', 30, 3, [2, 3], [1, 2])],
    ['B3', tensorOps('FloatStorage', '0', 30, 5, [2, 2, 2], [8, 1, 3])],
    ['C', tensorOps('FloatStorage', '0', 30, 4, [4, 5], [5, 1])],
    ['S', tensorOps('FloatStorage', '0', 30, 29, [], [])],
    ['Z', tensorOps('FloatStorage', '0', 30, 0, [0, 3], [3, 1])],
    ['U1', tensorOps('FloatStorage', '0', 30, 10, [1, 3, 1], [99, 1, 7])],
    ['H', tensorOps('HalfStorage', '1', 6, 1, [3], [2])],
    ['H2', tensorOps('HalfStorage', '1', 6, 0, [2, 3], [3, 1])],
    ['BF', tensorOps('BFloat16Storage', '2', 4, 0, [2, 2], [1, 2])],
    ['BF2', tensorOps('BFloat16Storage', '2', 4, 1, [3], [1])],
    ['L', tensorOps('LongStorage', '3', 4, 1, [2], [2])],
    ['D', tensorOps('DoubleStorage', '4', 3, 0, [3], [1])],
    ['I', tensorOps('IntStorage', '5', 3, 0, [3], [1])],
  ]);
  const storages = { '0': asBytes(v), '1': asBytes(halfBitsIn), '2': asBytes(bfIn), '3': asBytes(longs), '4': asBytes(doubles), '5': asBytes(ints) };

  it('materialises offsets, strides, transposes and every storage dtype contiguously', () => {
    const sd = readPtCheckpoint(ptZip(pkl, storages), 'views.pt').stateDict;
    const at = (offset: number, shape: number[], stride: number[]) => {
      // out[i0..ik] = storage[offset + Σ i_d·stride_d], row-major over the shape.
      const out: number[] = [];
      const rec = (d: number, base: number) => {
        if (d === shape.length) out.push(v[base]);
        else for (let i = 0; i < shape[d]; i++) rec(d + 1, base + i * stride[d]);
      };
      rec(0, offset);
      return Float32Array.from(out);
    };
    expect(sd.get('T')).toEqual({ dtype: 'F32', shape: [2, 3], data: at(3, [2, 3], [1, 2]) });
    expect(sd.get('T')!.data).toEqual(Float32Array.from([v[3], v[5], v[7], v[4], v[6], v[8]])); // written out once by hand
    expect(sd.get('B3')).toEqual({ dtype: 'F32', shape: [2, 2, 2], data: at(5, [2, 2, 2], [8, 1, 3]) });
    expect(sd.get('C')).toEqual({ dtype: 'F32', shape: [4, 5], data: v.slice(4, 24) });
    expect(sd.get('S')).toEqual({ dtype: 'F32', shape: [], data: Float32Array.from([v[29]]) });
    expect(sd.get('Z')).toEqual({ dtype: 'F32', shape: [0, 3], data: new Float32Array(0) });
    expect(sd.get('U1')).toEqual({ dtype: 'F32', shape: [1, 3, 1], data: v.slice(10, 13) });
    expect(sd.get('H')).toEqual({ dtype: 'F16', shape: [3], data: Float32Array.from([halfVals[1], halfVals[3], halfVals[5]]) });
    expect(sd.get('H2')).toEqual({ dtype: 'F16', shape: [2, 3], data: Float32Array.from(halfVals) });
    expect(sd.get('BF')).toEqual({ dtype: 'BF16', shape: [2, 2], data: Float32Array.from([bfVals[0], bfVals[2], bfVals[1], bfVals[3]]) });
    expect(sd.get('BF2')).toEqual({ dtype: 'BF16', shape: [3], data: bfVals.slice(1) });
    expect(sd.get('L')).toEqual({ dtype: 'I64', shape: [2], data: BigInt64Array.from([2n ** 40n, 7n]) });
    expect(sd.get('D')).toEqual({ dtype: 'F64', shape: [3], data: doubles });
    expect(sd.get('I')).toEqual({ dtype: 'I32', shape: [3], data: ints });
  });

  it('honours a big-endian byteorder record (PyTorch ≥ 2.1 on big-endian machines)', () => {
    const be = (n: number, es: number, put: (d: DataView, i: number) => void) => {
      const b = new Uint8Array(n * es);
      const d = new DataView(b.buffer);
      for (let i = 0; i < n; i++) put(d, i);
      return b;
    };
    const pk = stateDictPickle([
      ['f', tensorOps('FloatStorage', '0', 30, 2, [2, 2], [1, 2])],
      ['c', tensorOps('FloatStorage', '0', 30, 0, [3], [1])],
      ['h', tensorOps('HalfStorage', '1', 6, 0, [6], [1])],
      ['l', tensorOps('LongStorage', '3', 4, 0, [4], [1])],
    ]);
    const file = writeZip([
      { name: 'archive/data.pkl', data: pk },
      { name: 'archive/byteorder', data: enc.encode('big') },
      { name: 'archive/data/0', data: be(30, 4, (d, i) => d.setFloat32(4 * i, v[i], false)) },
      { name: 'archive/data/1', data: be(6, 2, (d, i) => d.setUint16(2 * i, halfBitsIn[i], false)) },
      { name: 'archive/data/3', data: be(4, 8, (d, i) => d.setBigInt64(8 * i, longs[i], false)) },
    ]);
    const sd = readPtCheckpoint(file, 'be.pt').stateDict;
    expect(sd.get('f')!.data).toEqual(Float32Array.from([v[2], v[4], v[3], v[5]]));
    expect(sd.get('c')!.data).toEqual(v.slice(0, 3));
    expect(sd.get('h')!.data).toEqual(Float32Array.from(halfVals));
    expect(sd.get('l')!.data).toEqual(longs);
    const bad = writeZip([{ name: 'archive/data.pkl', data: pk }, { name: 'archive/byteorder', data: enc.encode('middle') }]);
    expectOurError(() => readPtCheckpoint(bad, 'bo.pt'), /byteorder record says 'middle'/);
  });

  it('refuses views and storages that do not fit, without allocating for them', () => {
    const one = (ops: number[], st: Record<string, Uint8Array>) => ptZip(stateDictPickle([['x', ops]]), st);
    expectOurError(() => readPtCheckpoint(one(tensorOps('FloatStorage', '0', 30, 25, [2, 3], [3, 1]), storages), 'a.pt'), /tensor 'x'.*shorter than the tensor needs.*reaches element 30/);
    expectOurError(() => readPtCheckpoint(one(tensorOps('FloatStorage', '0', 30, 0, [2, 3], [3, 1]), { '0': asBytes(v.slice(0, 29)) }), 'a.pt'), /storage '0' holds 116 bytes, but declares 30 elements/);
    expectOurError(() => readPtCheckpoint(one(tensorOps('FloatStorage', '7', 30, 0, [2], [1]), storages), 'a.pt'), /storage '7' is missing/);
    expectOurError(() => readPtCheckpoint(one(tensorOps('FloatStorage', '0', 30, 0, [1e9], [0]), storages), 'a.pt'), /more elements than its storage/);
    expectOurError(() => readPtCheckpoint(one(tensorOps('FloatStorage', '0', 30, 0, [2, 3], [3]), storages), 'a.pt'), /size has 2 dimensions but stride has 1/);
    expectOurError(() => readPtCheckpoint(one(tensorOps('FloatStorage', '../../etc/passwd', 30, 0, [2], [1]), storages), 'a.pt'), /not a simple name/);
    // Many tensors over one storage, each of its full size: the output budget (4× the file) stops it.
    const many = stateDictPickle(Array.from({ length: 200 }, (_, i) => [`t${i}`, tensorOps('FloatStorage', '0', 1 << 18, 0, [1 << 18], [1])] as [string, number[]]));
    expectOurError(() => readPtCheckpoint(ptZip(many, { '0': new Uint8Array(4 << 18) }), 'many.pt'), /more than \d+ bytes, 4× the file/);
  });
});

describe('zip container', () => {
  it('finds the golden layout that Python zipfile reports', () => {
    const z = readZip(PT, 'tiny.model.pt');
    expect(z.entries.length).toBe(58);
    expect(z.byName.get('tiny.model/data.pkl')).toMatchObject({ dataOffset: 64, size: 10441 });
    expect(z.byName.get('tiny.model/data/0')).toMatchObject({ dataOffset: 10624, size: 4096 });
    expect(new TextDecoder().decode(z.read(z.byName.get('tiny.model/version')!))).toBe('3\n');
    expect(readZip(PT16).byName.get('tiny.model_fp16_nested/data.pkl')).toMatchObject({ dataOffset: 128 });
  });

  it('computes the standard CRC-32', () => {
    expect(crc32(enc.encode('123456789'))).toBe(0xcbf43926); // the CRC-32 check value
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('finds the root folder whatever it is called', () => {
    const sd = new Map([['w', { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } as StTensor]]);
    for (const root of ['archive', 'my.model-v2', 'x']) {
      const ck = readPtCheckpoint(writePtCheckpoint(sd, { root }), 'r.pt');
      expect(ck.root).toBe(root);
      expect(ck.stateDict.get('w')!.data).toEqual(Float32Array.from([1, 2]));
    }
  });

  it('refuses damaged or foreign archives with our error', () => {
    const set32 = (b: Uint8Array, at: number, val: number) => {
      const c = b.slice();
      new DataView(c.buffer).setUint32(at, val, true);
      return c;
    };
    const eocd = PT.length - 22;
    const cd = new DataView(PT.buffer, PT.byteOffset).getUint32(eocd + 16, true);
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', new Uint8Array(0), /too short/],
      ['wrong magic', enc.encode('GIF89a, certainly not a checkpoint at all'), /not a zip archive/],
      ['legacy pickle format', Uint8Array.from([0x80, 0x02, ...new Array(40).fill(0x4e)]), /legacy/],
      ['truncated by one byte', PT.subarray(0, PT.length - 1), /end-of-central-directory/],
      ['truncated in half', PT.subarray(0, PT.length >> 1), /end-of-central-directory/],
      ['central directory offset past the end', set32(set32(PT, eocd + 16, 0x7fffffff), eocd - 20 - 56 + 48, 0x7fffffff), /runs past/],
      ['absurd entry count', (() => { const c = PT.slice(); new DataView(c.buffer).setBigUint64(eocd - 20 - 56 + 32, 1n << 40n, true); new DataView(c.buffer).setBigUint64(eocd - 20 - 56 + 24, 1n << 40n, true); new DataView(c.buffer).setUint16(eocd + 8, 0xffff, true); new DataView(c.buffer).setUint16(eocd + 10, 0xffff, true); return c; })(), /cannot fit/],
      ['a compressed entry', (() => { const c = PT.slice(); new DataView(c.buffer).setUint16(cd + 10, 8, true); return c; })(), /compressed \(method 8, deflate\)/],
      ['an entry past the directory', set32(PT, cd + 42, cd), /runs past|no local header/],
      ['damaged storage bytes', (() => { const c = PT.slice(); c[20000] ^= 0x10; return c; })(), /CRC-32 mismatch/],
      ['no data.pkl', writeZip([{ name: 'archive/other.pkl', data: new Uint8Array(3) }]), /no '<root>\/data\.pkl'/],
      ['two data.pkl', writeZip([{ name: 'a/data.pkl', data: new Uint8Array(3) }, { name: 'b/data.pkl', data: new Uint8Array(3) }]), /2 data\.pkl/],
      ['TorchScript', writeZip([{ name: 'm/constants.pkl', data: new Uint8Array(3) }, { name: 'm/code/m.py', data: new Uint8Array(3) }]), /TorchScript/],
    ];
    for (const [name, bytes, re] of cases) {
      const e = expectOurError(() => readPtCheckpoint(bytes, 'bad.pt'), re);
      expect(e.message.startsWith('bad.pt'), name).toBe(true);
    }
  });

  it('reads damaged storage bytes when CRC checking is off (and they differ)', () => {
    const c = PT.slice();
    const z = readZip(c);
    const e = z.byName.get('tiny.model/data/0')!;
    c[e.dataOffset + 3] ^= 0x40; // the top byte of element 0
    const ck = readPtCheckpoint(c, 'x.pt', { checkCrc: false });
    const name = [...ck.stateDict.keys()][0]; // pos_embed sits in storage 0
    expect(ck.stateDict.get(name)!.data[0]).not.toBe(ST.tensors.get(name)!.data[0]);
  });
});

describe('writing checkpoints torch.load reads', () => {
  it('write → read of the golden state dict is bitwise identical', () => {
    const back = readPtCheckpoint(writePtCheckpoint(ST.tensors), 'rt.pt');
    expect([...back.stateDict.keys()]).toEqual([...ST.tensors.keys()]);
    for (const [name, t] of ST.tensors) {
      expect(back.stateDict.get(name)!.shape).toEqual(t.shape);
      expect(bits(back.stateDict.get(name)!), name).toEqual(bits(t));
    }
  });

  it('reproduces the float16 nested golden file byte for byte', () => {
    const ck = readPtCheckpoint(PT16, 'tiny.model_fp16_nested.pt');
    const out = writePtCheckpoint(ck.stateDict, { root: 'tiny.model_fp16_nested', nestUnder: 'model', scalars: { step: 3 }, dictType: 'dict', byteorder: false });
    expect(out.length).toBe(PT16.length);
    expect(Buffer.compare(Buffer.from(out), Buffer.from(PT16))).toBe(0);
  });

  it('matches the float32 golden file: entry names, 64-byte alignment, headers, storages, pickle opcodes', () => {
    const out = writePtCheckpoint(ST.tensors, { root: 'tiny.model' });
    const ours = readZip(out, 'ours');
    const gold = readZip(PT, 'golden');
    // Names: the golden ones plus `byteorder` (PyTorch ≥ 2.1), in the same order.
    expect(ours.entries.map((e) => e.name).filter((n) => n !== 'tiny.model/byteorder')).toEqual(gold.entries.map((e) => e.name));
    expect(ours.entries[1].name).toBe('tiny.model/byteorder');
    expect(new TextDecoder().decode(ours.read(ours.entries[1]))).toBe('little');
    const dv = new DataView(out.buffer, out.byteOffset);
    const gdv = new DataView(PT.buffer, PT.byteOffset);
    for (const [z, bytes, d] of [[ours, out, dv], [gold, PT, gdv]] as const) {
      for (const e of z.entries) {
        expect(e.dataOffset % 64, e.name).toBe(0);
        // Just before the data: the name, then the "FB" padding field of 'Z's that torch writes.
        const nameLen = enc.encode(e.name).length;
        const local = e.headerOffset;
        const extraLen = e.dataOffset - nameLen - 30 - local;
        expect(d.getUint16(local + 28, true)).toBe(extraLen);
        expect(d.getUint32(local, true)).toBe(0x04034b50);
        expect(d.getUint16(local + 6, true), 'flags: data descriptor + UTF-8').toBe(0x0808);
        expect(d.getUint16(local + 8, true), 'stored').toBe(0);
        expect(String.fromCharCode(bytes[e.dataOffset - extraLen], bytes[e.dataOffset - extraLen + 1])).toBe('FB');
        expect(d.getUint16(e.dataOffset - extraLen + 2, true)).toBe(extraLen - 4);
        expect(bytes.subarray(e.dataOffset - extraLen + 4, e.dataOffset).every((b) => b === 0x5a)).toBe(true);
        // The 16-byte data descriptor after the data.
        expect(d.getUint32(e.dataOffset + e.size, true)).toBe(0x08074b50);
        expect(d.getUint32(e.dataOffset + e.size + 4, true)).toBe(e.crc32);
      }
    }
    // Storages: byte-identical records.
    for (const e of gold.entries.filter((e) => e.name.includes('/data/'))) expect(Buffer.compare(Buffer.from(ours.read(ours.byName.get(e.name)!)), Buffer.from(gold.read(e))), e.name).toBe(0);
    // The pickle: identical to torch's up to where torch goes on to pickle the state dict's
    // `_metadata` attribute (EMPTY_DICT ... BUILD), which we leave out; then STOP.
    const p = ours.read(ours.byName.get('tiny.model/data.pkl')!);
    const g = gold.read(gold.byName.get('tiny.model/data.pkl')!);
    expect(Buffer.compare(Buffer.from(p.subarray(0, p.length - 1)), Buffer.from(g.subarray(0, p.length - 1)))).toBe(0);
    expect(p[p.length - 1]).toBe(0x2e); // STOP
    expect(g[p.length - 1]).toBe(0x7d); // EMPTY_DICT: the _metadata state
    expect(g[g.length - 2]).toBe(0x62); // BUILD
  });

  it('writes every dtype back as its storage type (float16/bfloat16 bit for bit)', () => {
    const sd = new Map<string, StTensor>([
      ['h', { dtype: 'F16', shape: [3], data: Float32Array.from([1, -2, 65504]) }],
      ['bf', { dtype: 'BF16', shape: [2], data: Float32Array.from([1.5, 2 ** 33]) }],
      ['l', { dtype: 'I64', shape: [2], data: BigInt64Array.from([-1n, 2n ** 40n]) }],
      ['d', { dtype: 'F64', shape: [1], data: Float64Array.from([Math.PI]) }],
      ['i', { dtype: 'I32', shape: [1, 1], data: Int32Array.from([-7]) }],
      ['s', { dtype: 'F32', shape: [], data: Float32Array.from([0.5]) }],
    ]);
    const back = readPtCheckpoint(writePtCheckpoint(sd, { nestUnder: 'ema', scalars: { step: 12, note: 'x' } }), 'rt.pt');
    expect(back.weights).toBe('ema');
    expect(back.scalars).toEqual({ step: 12, note: 'x' });
    expect(back.stateDict).toEqual(sd);
  });

  it('converts float32 to float16/bfloat16 bits exactly like the reference converters', () => {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const samples = [0, -0, 1, 65504, 65520, 1e-8, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 5.960464477539063e-8, Infinity, -Infinity, NaN, 1 / 3, -1e30, 1.00048828125, 1.00146484375];
    for (let i = 0; i < 20000; i++) samples.push(Math.fround((Math.random() - 0.5) * 2 ** ((i % 60) - 30)));
    for (const x of samples) {
      f[0] = x;
      expect(halfBits(u[0]), String(x)).toBe(floatToHalf(x));
      const want = new Uint32Array(new Float32Array([x]).buffer)[0];
      if (!Number.isNaN(x)) expect(bf16Bits(u[0]), String(x)).toBe(bf16Reference(want));
    }
  });
});

/** bfloat16 round to nearest even, written independently: compare the dropped half with 0x8000. */
function bf16Reference(u: number): number {
  const hi = u >>> 16;
  const lo = u & 0xffff;
  return lo > 0x8000 || (lo === 0x8000 && hi & 1) ? (hi + 1) & 0xffff : hi;
}

describe('dit-moe convert', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-convert-'));

  it('.pt → .safetensors → .pt keeps names, dtypes and values; config travels with --nest', () => {
    const st = path.join(dir, 'a.safetensors');
    convertFile(path.join(GOLDEN_DIR, 'tiny.model_fp16_nested.pt'), st);
    const s = parseSafetensors(new Uint8Array(fs.readFileSync(st)), st);
    expect(s.metadata).toEqual({ format: 'pt', step: '3' });
    for (const [name, t] of s.tensors) {
      expect(t.dtype).toBe('F16');
      const want = ST.tensors.get(name)!.data as Float32Array;
      (t.data as Float32Array).forEach((x, i) => {
        if (x !== halfToFloat(floatToHalf(want[i]))) expect.fail(`${name}[${i}]`);
      });
    }
    // The golden safetensors (with a config) to a nested .pt and back to safetensors.
    const pt = path.join(dir, 'b.pt');
    convertFile(path.join(GOLDEN_DIR, 'tiny.model.safetensors'), pt, { nestUnder: 'ema' });
    const ck = readPtCheckpoint(new Uint8Array(fs.readFileSync(pt)), pt);
    expect(ck.weights).toBe('ema');
    expect(ck.metadata.config).toBe(ST.metadata.config);
    const st2 = path.join(dir, 'c.safetensors');
    convertFile(pt, st2, { weights: 'ema' });
    const s2 = parseSafetensors(new Uint8Array(fs.readFileSync(st2)), st2);
    expect(s2.metadata.config).toBe(ST.metadata.config);
    for (const [name, t] of ST.tensors) expect(bits(s2.tensors.get(name)!), name).toEqual(bits(t));
  });

  it('calls the config-inference hook only when the input has no config', () => {
    const st = path.join(dir, 'd.safetensors');
    let calls = 0;
    const hook = (sd: Map<string, StTensor>) => {
      calls++;
      return JSON.stringify({ tensors: sd.size });
    };
    convertFile(path.join(GOLDEN_DIR, 'tiny.model.pt'), st, { inferConfigJson: hook });
    expect(calls).toBe(1);
    expect(parseSafetensors(new Uint8Array(fs.readFileSync(st))).metadata.config).toBe('{"tensors":56}');
  });

  it('refuses unknown directions and missing files with our error', () => {
    expectOurError(() => convertFile('a.pt', 'b.pt'), /cannot tell the direction/);
    expectOurError(() => convertFile(path.join(dir, 'missing.pt'), path.join(dir, 'x.safetensors')), /no such file/);
    expect(fs.existsSync(path.join(dir, 'x.safetensors'))).toBe(false);
  });
});
