/**
 * The routed-experts kernel (`Kernels.moeExperts`: dispatch, experts, weighted combine), on
 * every backend, against a float64 loop that never dispatches: for each token, each of its k
 * experts' SwiGLU computed on that row alone and summed with its weight. Shapes include
 * experts that no token chose, an odd number of rows per expert, D not a multiple of 4,
 * k = 1 and k = E. Tolerance 1e-5 relative to max(1, max|y|): float32 sums of ≤ 64 + 48
 * products per element, far below it in practice; a misrouted row is of order 1.
 * Then the eval and training paths of the MoE layer agree, and backward refuses an eval cache.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { moeForward, moeBackward, type MoeWeights, type MoeGrads, type SwigluWeights } from '../ref/moe.js';
import { dispatchByExpert } from '../ref/moeExperts.js';
import { expectClose } from './golden.js';
import { backendsWithThreads } from './backends.js';
import { rng } from './random.js';
import { expectOurError } from './errors.js';

const { list: BACKENDS, wasm, dispose } = await backendsWithThreads();
afterAll(dispose);


interface Case {
  M: number;
  D: number;
  F: number;
  E: number;
  k: number;
  x: Float32Array;
  idx: Int32Array;
  weight: Float32Array;
  experts: SwigluWeights[];
}

/** A routing that leaves the last expert unused when E > k (so an empty group always occurs). */
function makeCase(seed: number, M: number, D: number, F: number, E: number, k: number): Case {
  const r = rng(seed);
  const vals = (n: number, s: number) => Float32Array.from({ length: n }, () => (2 * r() - 1) * s);
  const idx = new Int32Array(M * k);
  const usable = E > k ? E - 1 : E;
  for (let m = 0; m < M; m++) {
    const pool = Array.from({ length: usable }, (_, e) => e);
    for (let j = 0; j < k; j++) idx[m * k + j] = pool.splice(Math.floor(r() * pool.length), 1)[0];
    idx.subarray(m * k, (m + 1) * k).sort();
  }
  const experts = Array.from({ length: E }, () => ({ gate: vals(F * D, 0.5), up: vals(F * D, 0.5), down: vals(D * F, 0.5) }));
  return { M, D, F, E, k, x: vals(M * D, 1), idx, weight: vals(M * k, 1).map(Math.abs), experts };
}

/** y[m] = Σ_j weight[m,j] · SwiGLU_{idx[m,j]}(x[m]) in float64, row by row (no dispatch). */
function moeExperts64(c: Case): Float64Array {
  const y = new Float64Array(c.M * c.D);
  for (let m = 0; m < c.M; m++)
    for (let j = 0; j < c.k; j++) {
      const w = c.experts[c.idx[m * c.k + j]];
      const h = new Float64Array(c.F);
      for (let f = 0; f < c.F; f++) {
        let g = 0;
        let u = 0;
        for (let d = 0; d < c.D; d++) {
          g += c.x[m * c.D + d] * w.gate[f * c.D + d];
          u += c.x[m * c.D + d] * w.up[f * c.D + d];
        }
        h[f] = (g / (1 + Math.exp(-g))) * u;
      }
      for (let d = 0; d < c.D; d++) {
        let s = 0;
        for (let f = 0; f < c.F; f++) s += h[f] * w.down[d * c.F + f];
        y[m * c.D + d] += c.weight[m * c.k + j] * s;
      }
    }
  return y;
}

describe.each(BACKENDS)('moeExperts [%s]', (_name, kern) => {
  it('equals the per-token float64 sum on random shapes (empty experts, odd groups, D % 4 ≠ 0)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom(1, 3, 5, 8, 17),
        fc.constantFrom(1, 4, 7, 16),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        (seed, M, D, F, E, kWant) => {
          const k = Math.min(kWant, E);
          const c = makeCase(seed, M, D, F, E, k);
          const out = new Float32Array(M * D).fill(Number.NaN); // overwritten, never read
          kern.moeExperts(out, c.x, c.idx, c.weight, c.experts, M, D, F, k);
          expectClose('moeExperts', out, moeExperts64(c), 1e-5);
        },
      ),
      { seed: 1234, numRuns: 30 },
    );
  });

  it('balanced and collapsed routings (on threads: experts shared out whole, or each split by columns)', () => {
    for (const collapsed of [false, true]) {
      const c = makeCase(11, 37, 5, 16, 4, collapsed ? 1 : 2);
      // collapsed: every token to expert 2 (one expert has all the rows); balanced: round robin
      for (let m = 0; m < c.M; m++) for (let j = 0; j < c.k; j++) c.idx[m * c.k + j] = collapsed ? 2 : (m + j) % c.E;
      const out = new Float32Array(c.M * c.D);
      kern.moeExperts(out, c.x, c.idx, c.weight, c.experts, c.M, c.D, c.F, c.k);
      expectClose(collapsed ? 'collapsed' : 'balanced', out, moeExperts64(c), 1e-5);
    }
  });

  it('the groups are a stable counting sort: every slot once, in token order', () => {
    const c = makeCase(7, 33, 3, 4, 5, 2);
    const groups = dispatchByExpert(c.idx, c.E);
    expect(groups[c.E - 1]).toHaveLength(0); // the unused expert
    const seen = groups.flatMap((g, e) => Array.from(g, (s) => [s, e]));
    expect(seen.map(([s]) => s).sort((a, b) => a - b)).toEqual(Array.from({ length: 33 * 2 }, (_, i) => i));
    for (const [s, e] of seen) expect(c.idx[s]).toBe(e);
    for (const g of groups) for (let i = 1; i < g.length; i++) expect(g[i]).toBeGreaterThan(g[i - 1]);
  });

  it('the MoE layer gives the same output on its eval and training paths; backward refuses an eval cache', () => {
    const [B, T, D, E, k, F] = [2, 9, 12, 4, 2, 8];
    const r = rng(3);
    const v = (n: number) => Float32Array.from({ length: n }, () => (2 * r() - 1) * 0.5);
    const w: MoeWeights = {
      gate: v(E * D),
      experts: Array.from({ length: E }, () => ({ gate: v(F * D), up: v(F * D), down: v(D * F) })),
      shared: { gate: v(2 * D * D), up: v(2 * D * D), down: v(D * 2 * D) },
    };
    const dims = { D, E, k, F, Fs: 2 * D, normTopk: false, alpha: 0.01, seqAux: false };
    const x = v(B * T * D);
    const yEval = new Float32Array(B * T * D);
    const yTrain = new Float32Array(B * T * D);
    const evalCache = moeForward(kern, yEval, x, w, dims, B, T, false);
    const trainCache = moeForward(kern, yTrain, x, w, dims, B, T, true);
    expectClose('eval vs train', yEval, yTrain, 1e-6);
    expect(evalCache.aux).toBe(trainCache.aux);
    const g: MoeGrads = { gate: new Float32Array(E * D), experts: w.experts.map((e) => ({ gate: new Float32Array(e.gate.length), up: new Float32Array(e.up.length), down: new Float32Array(e.down.length) })), shared: null };
    expect(() => moeBackward(kern, new Float32Array(B * T * D), g, yEval, x, w, evalCache, dims, B, T, 1)).toThrow(/training forward/);
  });
});

describe('moeExperts [wasm] bad input', () => {
  it('names an expert index out of range and a short weight', () => {
    const c = makeCase(1, 4, 3, 4, 3, 2);
    const out = new Float32Array(4 * 3);
    const bad = Int32Array.from(c.idx);
    bad[5] = 3;
    expectOurError(() => wasm.moeExperts(out, c.x, bad, c.weight, c.experts, 4, 3, 4, 2), 'topkIdx[5] = 3', '3 experts');
    expectOurError(() => wasm.moeExperts(out, c.x, c.idx, c.weight, [c.experts[0], c.experts[1], { ...c.experts[2], down: new Float32Array(3) }], 4, 3, 4, 2), 'experts[2].down');
  });
});
