/**
 * The operand checks of the `Kernels` interface, written once for every backend: dimensions
 * are non-negative integers, every array holds at least the elements its dimensions say,
 * routing slots and expert indices are in range. `withOperandChecks(k)` puts them in front of
 * each kernel of a backend, so every backend rejects the same bad call with the same
 * `DitMoeError` (named `<backend>.<kernel>`) before any arithmetic: without them `ref` would
 * read past a short array and compute NaN silently.
 */
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from './kernels.js';
import type { SwigluWeights } from './swiglu.js';
import { checkConvShape } from './vae/conv2d.js';

/** Dimensions are non-negative integers (also used by backends' own extra kernels). */
export function dims(where: string, ...ds: number[]): void {
  for (const d of ds) if (!Number.isInteger(d) || d < 0) throw new DitMoeError(`dimensions must be non-negative integers, got ${ds.join(', ')}`, where);
}

/** An array holds at least n elements. */
export function size(where: string, name: string, a: ArrayLike<number> | null, n: number): void {
  if (a && a.length < n) throw new DitMoeError(`${name} has ${a.length} elements, needs ${n}`, where);
}

/** One SwiGLU expert forward (`swiglu`, or one call of `swigluExperts`: names prefixed). */
function swiglu(where: string, pre: string, out: Float32Array, gate: Float32Array | null, up: Float32Array | null, x: Float32Array, w: SwigluWeights, M: number, D: number, F: number): void {
  dims(where, M, D, F);
  size(where, `${pre}out`, out, M * D), size(where, `${pre}gate`, gate, M * F), size(where, `${pre}up`, up, M * F), size(where, `${pre}x`, x, M * D);
  size(where, `${pre}wg`, w.gate, F * D), size(where, `${pre}wu`, w.up, F * D), size(where, `${pre}wd`, w.down, D * F);
}

/** One SwiGLU expert backward (dw: the weight gradients). */
function swigluBackward(where: string, pre: string, dx: Float32Array, dw: SwigluWeights, dout: Float32Array, x: Float32Array, gate: Float32Array, up: Float32Array, w: SwigluWeights, M: number, D: number, F: number): void {
  dims(where, M, D, F);
  size(where, `${pre}dx`, dx, M * D), size(where, `${pre}dwg`, dw.gate, F * D), size(where, `${pre}dwu`, dw.up, F * D), size(where, `${pre}dwd`, dw.down, D * F);
  size(where, `${pre}dout`, dout, M * D), size(where, `${pre}x`, x, M * D), size(where, `${pre}gate`, gate, M * F), size(where, `${pre}up`, up, M * F);
  size(where, `${pre}wg`, w.gate, F * D), size(where, `${pre}wu`, w.up, F * D), size(where, `${pre}wd`, w.down, D * F);
}

/** The routing slots of one expert: every row slots[r] / k of a [rows, D] array exists, and slots[r] < weights. */
function slots(where: string, sl: Int32Array, k: number, rows: number, weights: number): void {
  if (!Number.isInteger(k) || k < 1) throw new DitMoeError(`k must be a positive integer, got ${k}`, where);
  for (let r = 0; r < sl.length; r++) {
    const s = sl[r];
    if (!(Number.isInteger(s) && s >= 0 && ((s / k) | 0) < rows && s < weights)) throw new DitMoeError(`slots[${r}] = ${s} is not a slot of the ${rows} tokens × ${k}`, where);
  }
}

type Kernel = Exclude<keyof Kernels, 'name' | 'mark' | 'release' | 'weightsChanged'>;
type Check<K extends Kernel> = (where: string, ...args: Parameters<Kernels[K]>) => void;

/** The check of each kernel: its arguments, and `where` (`<backend>.<kernel>`) to name in the error. */
export const kernelChecks: { [K in Kernel]: Check<K> } = {
  linear(where, out, x, w, b, M, K, N) {
    dims(where, M, K, N);
    size(where, 'out', out, M * N), size(where, 'x', x, M * K), size(where, 'w', w, N * K), size(where, 'b', b, N);
  },
  linearBackward(where, dx, dw, db, dout, x, w, M, K, N) {
    dims(where, M, K, N);
    size(where, 'dx', dx, M * K), size(where, 'dw', dw, N * K), size(where, 'db', db, N);
    size(where, 'dout', dout, M * N), size(where, 'x', x, M * K), size(where, 'w', w, N * K);
  },
  layerNorm(where, out, mean, rstd, x, w, b, M, D) {
    dims(where, M, D);
    size(where, 'out', out, M * D), size(where, 'mean', mean, M), size(where, 'rstd', rstd, M), size(where, 'x', x, M * D), size(where, 'w', w, D), size(where, 'b', b, D);
  },
  layerNormBackward(where, dx, dw, db, dout, x, w, mean, rstd, M, D) {
    dims(where, M, D);
    size(where, 'dx', dx, M * D), size(where, 'dw', dw, D), size(where, 'db', db, D), size(where, 'dout', dout, M * D);
    size(where, 'x', x, M * D), size(where, 'w', w, D), size(where, 'mean', mean, M), size(where, 'rstd', rstd, M);
  },
  modulate(where, out, x, shift, scale, B, T, D) {
    dims(where, B, T, D);
    size(where, 'out', out, B * T * D), size(where, 'x', x, B * T * D), size(where, 'shift', shift, B * D), size(where, 'scale', scale, B * D);
  },
  modulateBackward(where, dx, dshift, dscale, dout, x, scale, B, T, D) {
    dims(where, B, T, D);
    size(where, 'dx', dx, B * T * D), size(where, 'dshift', dshift, B * D), size(where, 'dscale', dscale, B * D);
    size(where, 'dout', dout, B * T * D), size(where, 'x', x, B * T * D), size(where, 'scale', scale, B * D);
  },
  gatedResidual(where, x, f, gate, B, T, D) {
    dims(where, B, T, D);
    size(where, 'x', x, B * T * D), size(where, 'f', f, B * T * D), size(where, 'gate', gate, B * D);
  },
  gatedResidualBackward(where, df, dgate, dout, f, gate, B, T, D) {
    dims(where, B, T, D);
    size(where, 'df', df, B * T * D), size(where, 'dgate', dgate, B * D), size(where, 'dout', dout, B * T * D), size(where, 'f', f, B * T * D), size(where, 'gate', gate, B * D);
  },
  attention(where, out, probs, qkv, B, T, H, Dh) {
    dims(where, B, T, H, Dh);
    const D = H * Dh;
    size(where, 'out', out, B * T * D), size(where, 'probs', probs, B * H * T * T), size(where, 'qkv', qkv, B * T * 3 * D);
  },
  attentionBackward(where, dqkv, dout, qkv, probs, B, T, H, Dh) {
    dims(where, B, T, H, Dh);
    const D = H * Dh;
    size(where, 'dqkv', dqkv, B * T * 3 * D), size(where, 'dout', dout, B * T * D), size(where, 'qkv', qkv, B * T * 3 * D), size(where, 'probs', probs, B * H * T * T);
  },
  swiglu(where, out, gate, up, x, wg, wu, wd, M, D, F) {
    swiglu(where, '', out, gate, up, x, { gate: wg, up: wu, down: wd }, M, D, F);
  },
  swigluBackward(where, dx, dwg, dwu, dwd, dout, x, gate, up, wg, wu, wd, M, D, F) {
    swigluBackward(where, '', dx, { gate: dwg, up: dwu, down: dwd }, dout, x, gate, up, { gate: wg, up: wu, down: wd }, M, D, F);
  },
  swigluExperts(where, calls, D) {
    calls.forEach((c, i) => swiglu(where, `calls[${i}].`, c.out, c.gate, c.up, c.x, c.w, c.M, D, c.F));
  },
  swigluExpertsBackward(where, calls, D) {
    calls.forEach((c, i) => swigluBackward(where, `calls[${i}].`, c.dx, c.dw, c.dout, c.x, c.gate, c.up, c.w, c.M, D, c.F));
  },
  gatherRows(where, out, x, sl, k, D) {
    dims(where, D);
    const [n, M] = [sl.length, D > 0 ? Math.floor(x.length / D) : 0];
    if (n * D === 0) return; // nothing is read or written
    size(where, 'out', out, n * D);
    slots(where, sl, k, M, Infinity);
  },
  scatterAddRows(where, out, y, sl, weight, k, D) {
    dims(where, D);
    const [n, M] = [sl.length, D > 0 ? Math.floor(out.length / D) : 0];
    if (n * D === 0) return;
    size(where, 'y', y, n * D);
    slots(where, sl, k, M, weight ? weight.length : Infinity);
  },
  scatterAddRowsBackward(where, dy, dweight, dout, y, sl, weight, k, D) {
    dims(where, D);
    const [n, M] = [sl.length, D > 0 ? Math.floor(dout.length / D) : 0];
    if (n * D === 0) return; // D = 0: each dweight[s] is an empty dot product, written 0
    size(where, 'dy', dy, n * D), size(where, 'y', y, n * D);
    slots(where, sl, k, M, Math.min(weight.length, dweight.length));
  },
  moeExperts(where, out, x, topkIdx, topkWeight, experts, M, D, F, k) {
    dims(where, M, D, F, k);
    size(where, 'out', out, M * D), size(where, 'x', x, M * D), size(where, 'topkWeight', topkWeight, M * k), size(where, 'topkIdx', topkIdx, M * k);
    const E = experts.length;
    for (let s = 0; s < M * k; s++) {
      const e = topkIdx[s];
      if (!(e >= 0 && e < E)) throw new DitMoeError(`topkIdx[${s}] = ${e} is not one of the ${E} experts`, where);
    }
    experts.forEach((w, e) => {
      size(where, `experts[${e}].gate`, w.gate, F * D), size(where, `experts[${e}].up`, w.up, F * D), size(where, `experts[${e}].down`, w.down, D * F);
    });
  },
  conv2d(where, out, x, w, b, shape) {
    const [Ho, Wo] = checkConvShape(shape, where);
    const { N, C, H, W, O, kh, kw } = shape;
    size(where, 'out', out, N * O * Ho * Wo), size(where, 'x', x, N * C * H * W), size(where, 'w', w, O * C * kh * kw), size(where, 'b', b, O);
  },
  groupNorm(where, out, x, w, b, N, C, S, G) {
    dims(where, N, C, S, G);
    if (G < 1 || C % G !== 0) throw new DitMoeError(`${C} channels do not split into ${G} groups`, where);
    size(where, 'out', out, N * C * S), size(where, 'x', x, N * C * S), size(where, 'w', w, C), size(where, 'b', b, C);
  },
  tensor(where, n) {
    dims(where, n);
  },
};

/**
 * Puts `kernelChecks` in front of every kernel of `k`, in place (the backend keeps its own
 * `this`, prototype and other methods), and returns it. Applied once where each backend is
 * made: `refKernels`, and the wasm backend in `createWasmKernelsOn`.
 */
export function withOperandChecks<T extends Kernels>(k: T): T {
  const target = k as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of Object.keys(kernelChecks) as Kernel[]) {
    const run = target[name].bind(k);
    const check = kernelChecks[name] as (where: string, ...args: unknown[]) => void;
    const where = `${k.name}.${name}`;
    target[name] = (...args: unknown[]) => {
      check(where, ...args);
      return run(...args);
    };
  }
  return k;
}
