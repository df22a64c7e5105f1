/**
 * What the operator suites of spec/ops/ share: the backends they run on, their inputs, the
 * float64 product that several float64 twins build on, and the finite differences.
 *
 * Every operator suite is written once and run against every backend (describe.each over
 * `backendsWithThreads()`: ref, wasm, wasm on 2 threads with every product and attention split
 * however small, wasm on an unshared memory):
 *  - each kernel equals the reference kernel (`refKernels`) within 1e-5 relative to
 *    max(1, max|ref|), on random shapes that include 1, 3, 5, 17 and 129 and values that
 *    include ±1e4, zeros and denormals (for `ref` itself this is a smoke test);
 *  - each backward kernel equals float64 central finite differences of a float64 forward
 *    written in its suite (its float64 twin, independent of ref/) on small shapes.
 *
 * Tolerances: 1e-5 relative (the per-kernel bound). The float32 sums of a product run over at
 * most 129·3 terms here; their rounding stays below 1e-6 relative in practice.
 * Finite differences: h = 1e-4 in float64 (truncation ~1e-8); the float32 backward is
 * compared within 1e-4 relative to max(1, max|gradient|): float32 rounding of 2–4 chained
 * products stays near 1e-6, a wrong index or a missing term is of order 1.
 */
import fc from 'fast-check';
import { expectClose } from '../golden.js';
import { rng } from '../random.js';

export const TOL = 1e-5;
export const FD_TOL = 1e-4;
export const RUNS = 20;

/** fast-check's options for a suite on one backend: a fixed seed per backend. */
export const fcOptions = (backend: string) => ({ numRuns: RUNS, seed: 0x5eed + backend.length });

// ---------- inputs ----------

export const SPECIAL = [0, 1e4, -1e4, 1e-40, -1e-40, 1.4e-45, 0, -0];

/** n values in [-scale, scale], a share `special` of them ±1e4, zeros or denormals. */
export function values(seed: number, n: number, special: number, big = true): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (r() < special) {
      const s = SPECIAL[Math.floor(r() * SPECIAL.length)];
      a[i] = big || Math.abs(s) < 1 ? s : 0;
    } else a[i] = 2 * r() - 1;
  }
  return a;
}

export const dim = fc.oneof(fc.constantFrom(1, 3, 5, 17, 129), fc.integer({ min: 1, max: 40 }));
export const smallDim = fc.oneof(fc.constantFrom(1, 3, 5, 17), fc.integer({ min: 1, max: 24 }));
export const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
export const special = fc.constantFrom(0, 0.05, 0.3);

export const rand = (s: number, n: number, sp = 0) => values(s, n, sp, false);

// ---------- float64 (for the finite differences; independent of ref/) ----------

/** y[M,N] = x[M,K]·w[N,K]ᵀ + b in float64: the product the twins of linear and swiglu share. */
export function linear64(x: Float64Array, w: Float64Array, b: Float64Array | null, M: number, K: number, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

/**
 * Central differences of L = Σ dout ⊙ f(params) with respect to params[which], in float64
 * at the float32 values of the inputs.
 */
export function fdGrad(params: Float32Array[], which: number, dout: Float32Array, f: (p: Float64Array[]) => Float64Array, h = 1e-4): Float64Array {
  const p64 = params.map((p) => Float64Array.from(p));
  const loss = () => {
    const y = f(p64);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += dout[i] * y[i];
    return s;
  };
  const target = p64[which];
  const g = new Float64Array(target.length);
  for (let i = 0; i < target.length; i++) {
    const v = target[i];
    target[i] = v + h;
    const lp = loss();
    target[i] = v - h;
    const lm = loss();
    target[i] = v;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

/** Backward accumulates: compare (after - before) with the expected increment. */
export function expectIncrement(name: string, after: Float32Array, before: Float32Array, expected: ArrayLike<number>, tol: number): void {
  const inc = new Float64Array(after.length);
  for (let i = 0; i < after.length; i++) inc[i] = after[i] - before[i];
  expectClose(name, inc, expected, tol);
}
