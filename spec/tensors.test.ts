/**
 * Tensors in the kernels' own memory (`Kernels.tensor`, `mark`, `release`), on every backend:
 *  - every kernel gives bit-identical results whether its operands are plain arrays (on wasm
 *    copied in and out per call) or the backend's tensors (on wasm used in place), for outputs
 *    written fresh (over a non-zero tensor, so a missed zeroing shows) and accumulated (+=);
 *  - tensors start zeroed; `release(mark)` gives the memory back, and a bad mark is an error;
 *  - an eval forward leaves no tensor behind and a training step releases its activations, so
 *    the memory stops growing after the first step;
 * and on wasm: an output that aliases an input is computed as with copies (input read first),
 * tensors survive the memory's growth, and on a memory that is not shared (a browser page
 * without cross-origin isolation) tensors are plain arrays.
 * Bit-identical, not within a tolerance: the same kernel runs on the same numbers in the same
 * order; only where they live differs.
 */
import { describe, it, expect, afterAll } from 'vitest';
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import { DitMoeError } from '../core/errors.js';
import { createWasmKernelsUnshared, type WasmKernels } from '../wasm/node.js';
import { Trainer } from '../train/trainer.js';
import { backendsWithThreads } from './backends.js';
import { tinyModel, barsDataset, args } from './trainHelpers.js';
import { rng } from './random.js';

const { list: BACKENDS, wasm, dispose } = await backendsWithThreads();
afterAll(dispose);
// the in-place suites: the wasm backends on a shared memory (the unshared one hands out plain arrays)
const WASMS = BACKENDS.filter(([n]) => n !== 'ref' && !n.includes('unshared')) as [string, WasmKernels][];

function values(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

/** Where one case's arrays live: plain copies, or copies in the backend's tensors. */
type Place = (src: Float32Array) => Float32Array;

const [B, T, H, Dh] = [3, 5, 2, 8];
const D = H * Dh;
const M = B * T;
const [K, N, F, E, k] = [20, 19, 24, 4, 2];

/** Each kernel on arrays placed by `at`; returns every array it writes, copied out. */
const CASES: [string, (kern: Kernels, at: Place) => Float32Array[]][] = [
  ['linear', (kern, at) => {
    const out = at(values(1, M * N)); // written over: its old contents must not matter
    kern.linear(out, at(values(2, M * K)), values(3, N * K), values(4, N), M, K, N);
    return [out];
  }],
  ['linearBackward', (kern, at) => {
    const [dx, dw, db] = [at(values(5, M * K)), at(values(6, N * K)), at(values(7, N))];
    kern.linearBackward(dx, dw, db, at(values(8, M * N)), at(values(9, M * K)), values(3, N * K), M, K, N);
    return [dx, dw, db];
  }],
  ['layerNorm', (kern, at) => {
    const [out, mean, rstd] = [at(values(10, M * D)), at(values(11, M)), at(values(12, M))];
    kern.layerNorm(out, mean, rstd, at(values(13, M * D)), values(14, D), values(15, D), M, D, 1e-6);
    return [out, mean, rstd];
  }],
  ['layerNormBackward', (kern, at) => {
    const x = values(13, M * D);
    const [out, mean, rstd] = [new Float32Array(M * D), new Float32Array(M), new Float32Array(M)];
    refKernels.layerNorm(out, mean, rstd, x, null, null, M, D, 1e-6);
    const [dx, dw, db] = [at(values(16, M * D)), at(values(17, D)), at(values(18, D))];
    kern.layerNormBackward(dx, dw, db, at(values(19, M * D)), at(x), values(14, D), at(mean), at(rstd), M, D);
    return [dx, dw, db];
  }],
  ['modulate, gatedResidual and their backwards', (kern, at) => {
    const [x, shift, scale, gate] = [at(values(80, M * D)), at(values(81, B * D)), at(values(82, B * D)), at(values(83, B * D))];
    const out = at(values(84, M * D));
    kern.modulate(out, x, shift, scale, B, T, D);
    const res = at(values(85, M * D));
    kern.gatedResidual(res, out, gate, B, T, D);
    const [dx, dshift, dscale, dgate] = [at(values(86, M * D)), at(values(87, B * D)), at(values(88, B * D)), at(values(89, B * D))];
    const dout = at(values(90, M * D));
    kern.modulateBackward(dx, dshift, dscale, dout, x, scale, B, T, D);
    kern.gatedResidualBackward(dx, dgate, dout, out, gate, B, T, D);
    return [out, res, dx, dshift, dscale, dgate];
  }],
  ['attention with probs, and its backward', (kern, at) => {
    const qkv = at(values(20, M * 3 * D));
    const [out, probs] = [at(values(21, M * D)), at(values(22, B * H * T * T))];
    kern.attention(out, probs, qkv, B, T, H, Dh);
    const dqkv = at(values(23, M * 3 * D));
    kern.attentionBackward(dqkv, at(values(24, M * D)), qkv, probs, B, T, H, Dh);
    return [out, probs, dqkv];
  }],
  ['attention (eval)', (kern, at) => {
    const out = at(values(21, M * D));
    kern.attention(out, null, at(values(20, M * 3 * D)), B, T, H, Dh);
    return [out];
  }],
  ['swiglu, and its backward', (kern, at) => {
    const [wg, wu, wd] = [values(25, F * D), values(26, F * D), values(27, D * F)];
    const x = at(values(28, M * D));
    const [out, gate, up] = [at(values(29, M * D)), at(values(30, M * F)), at(values(31, M * F))];
    kern.swiglu(out, gate, up, x, wg, wu, wd, M, D, F);
    const [dx, dwg, dwu, dwd] = [at(values(32, M * D)), at(values(33, F * D)), at(values(34, F * D)), at(values(35, D * F))];
    kern.swigluBackward(dx, dwg, dwu, dwd, at(values(36, M * D)), x, gate, up, wg, wu, wd, M, D, F);
    return [out, gate, up, dx, dwg, dwu, dwd];
  }],
  ['gatherRows, scatterAddRows and its backward', (kern, at) => {
    const slots = Int32Array.of(0, 3, 4, 9, 12, 17, 28);
    const xIn = at(values(100, slots.length * D));
    kern.gatherRows(xIn, at(values(101, M * D)), slots, k, D);
    const out = at(values(102, M * D));
    kern.scatterAddRows(out, xIn, slots, at(values(103, M * k)), k, D);
    const [dy, dweight] = [at(values(104, slots.length * D)), at(values(105, M * k))];
    kern.scatterAddRowsBackward(dy, dweight, at(values(106, M * D)), xIn, slots, at(values(103, M * k)), k, D);
    return [xIn, out, dy, dweight];
  }],
  ['moeExperts', (kern, at) => {
    const experts = Array.from({ length: E }, (_, e) => ({ gate: values(40 + e, F * D), up: values(50 + e, F * D), down: values(60 + e, D * F) }));
    const r = rng(70);
    const idx = Int32Array.from({ length: M * k }, (_, s) => Math.floor(r() * E));
    for (let m = 0; m < M; m++) if (idx[m * k] === idx[m * k + 1]) idx[m * k + 1] = (idx[m * k] + 1) % E;
    const out = at(values(71, M * D));
    kern.moeExperts(out, at(values(72, M * D)), idx, at(values(73, M * k)), experts, M, D, F, k);
    return [out];
  }],
];

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(Float32Array.from(a).buffer);
}

describe.each(BACKENDS)('tensors on %s', (_name, kern) => {
  it.each(CASES)('%s: the same bits on plain arrays and on tensors', (_case, run) => {
    const mark = kern.mark();
    const plain = run(kern, (src) => Float32Array.from(src));
    const inTensors = run(kern, (src) => {
      const t = kern.tensor(src.length);
      t.set(src);
      return t;
    });
    expect(inTensors.length).toBe(plain.length);
    inTensors.forEach((t, i) => expect(bits(t), `output ${i}`).toEqual(bits(plain[i])));
    kern.release(mark);
    expect(kern.mark()).toBe(mark);
  });

  it('tensors start zeroed (also where a released one was) and a bad mark is an error', () => {
    const mark = kern.mark();
    kern.tensor(100).fill(7);
    kern.release(mark);
    expect(Array.from(kern.tensor(100)).every((v) => v === 0)).toBe(true);
    kern.release(mark);
    if (kern !== refKernels) {
      expect(() => kern.release(mark + 5)).toThrow(DitMoeError);
      expect(() => kern.release(-1)).toThrow(/mark -1 is not one of this backend's/);
    }
  });

  it('an eval forward leaves no tensor behind; a training step releases its activations', () => {
    const model = tinyModel();
    model.kernels = kern;
    const x = values(80, 4 * 64);
    const t = Float32Array.of(10, 200, 500, 900);
    const y = [0, 1, 2, 3];
    const mark = kern.mark();
    const first = model.forward(x, [4, 1, 8, 8], t, y);
    expect(kern.mark()).toBe(mark);
    expect(model.forward(x, [4, 1, 8, 8], t, y)).toEqual(first); // the output is its own array
    expect(first.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    const trainer = new Trainer(model, barsDataset(), args());
    trainer.trainStep();
    expect(kern.mark()).toBe(mark);
    if (kern !== refKernels) {
      const w = kern as WasmKernels;
      const inUse = w.arena.bytesInUse;
      const size = w.arena.memory.buffer.byteLength;
      for (let i = 0; i < 3; i++) trainer.trainStep();
      expect(w.arena.memory.buffer.byteLength).toBe(size);
      expect(w.arena.bytesInUse).toBe(inUse); // the packed weights, repacked after each update
    }
  });
});

describe.each(WASMS)('in place on %s', (_name, kern) => {
  it('a forward that fails half-way frees what it had allocated', () => {
    const model = tinyModel();
    const failing = Object.create(kern) as Kernels;
    failing.attention = () => {
      throw new DitMoeError('injected failure', 'test');
    };
    model.kernels = failing;
    const mark = kern.mark();
    const x = values(96, 2 * 64);
    expect(() => model.forwardTrain(x, [2, 1, 8, 8], [10, 20], [0, 1])).toThrow(/injected failure/);
    expect(() => model.forward(x, [2, 1, 8, 8], [10, 20], [0, 1])).toThrow(/injected failure/);
    expect(kern.mark()).toBe(mark);
  });


  it('hands out views of its shared memory', () => {
    const t = kern.tensor(8);
    expect(t.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(t.byteOffset % 64).toBe(0);
    kern.release(kern.mark() - 1);
  });

  it('an output aliasing an input is computed as with copies (the input read first)', () => {
    const mark = kern.mark();
    const [w, b] = [values(90, K * K), values(91, K)];
    const x = kern.tensor(M * K);
    x.set(values(92, M * K));
    const want = new Float32Array(M * K);
    kern.linear(want, Float32Array.from(x), w, b, M, K, K);
    kern.linear(x, x, w, b, M, K, K); // out = x
    expect(bits(x)).toEqual(bits(want));
    const dx = kern.tensor(M * K);
    dx.set(values(93, M * K));
    const wantDx = Float32Array.from(dx);
    kern.linearBackward(wantDx, null, null, Float32Array.from(dx), values(94, M * K), w, M, K, K);
    kern.linearBackward(dx, null, null, dx, values(94, M * K), w, M, K, K); // dx += dx·w
    expect(bits(dx)).toEqual(bits(wantDx));
    kern.release(mark);
  });

  it('expert calls sharing an output through views cut before and after the memory grew run one after the other', () => {
    const mark = kern.mark();
    const [n, Fx] = [6, 8];
    const dx = kern.tensor(n * D);
    dx.set(values(110, n * D));
    kern.tensor(kern.arena.memory.buffer.byteLength / 4 + 1e5); // the memory grows: a new buffer object
    const again = new Float32Array(kern.arena.memory.buffer, dx.byteOffset, n * D); // the same floats
    const w = { gate: values(111, Fx * D), up: values(112, Fx * D), down: values(113, D * Fx) };
    const call = (target: Float32Array, q: number) => ({ dx: target, dw: { gate: new Float32Array(Fx * D), up: new Float32Array(Fx * D), down: new Float32Array(D * Fx) }, dout: values(q, n * D), x: values(q + 1, n * D), gate: values(q + 2, n * Fx), up: values(q + 3, n * Fx), w, M: n, F: Fx });
    const want = values(110, n * D);
    refKernels.swigluExpertsBackward([call(want, 120), call(want, 130)], D);
    kern.swigluExpertsBackward([call(dx, 120), call(again, 130)], D);
    Array.from(dx).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[i]))));
    kern.release(mark);
  });

  it('tensors survive the memory growing under them', () => {
    const mark = kern.mark();
    const x = kern.tensor(M * K);
    x.set(values(95, M * K));
    const size = kern.arena.memory.buffer.byteLength;
    kern.tensor(size / 4 + 1e6); // more than the memory had: it grows
    expect(kern.arena.memory.buffer.byteLength).toBeGreaterThan(size);
    expect(bits(x)).toEqual(bits(values(95, M * K)));
    const [out, want] = [kern.tensor(M * N), new Float32Array(M * N)];
    kern.linear(out, x, values(3, N * K), null, M, K, N);
    refKernels.linear(want, values(95, M * K), values(3, N * K), null, M, K, N);
    Array.from(out).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
    kern.release(mark);
  });
});

describe('wasm on a memory that is not shared', () => {
  it('hands out plain arrays, which its kernels copy in and out', () => {
    const kern = createWasmKernelsUnshared();
    const t = kern.tensor(8);
    expect(t.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(kern.mark()).toBe(0);
    const [out, want] = [kern.tensor(M * N), new Float32Array(M * N)];
    kern.linear(out, values(2, M * K), values(3, N * K), null, M, K, N);
    wasm.linear(want, values(2, M * K), values(3, N * K), null, M, K, N);
    expect(bits(out)).toEqual(bits(want));
  });
});
