/**
 * linear (ref/linear.ts, wasm/assembly/gemm.ts) and its backward on every backend: equal to
 * refKernels, with and without bias, any of dx, dw, db null; zero-sized dimensions.
 * Then its backward against float64 central finite differences of the float64 twin here.
 * Backends, inputs and tolerances: spec/ops/common.ts.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { refKernels } from '../../ref/refKernels.js';
import { expectClose } from '../golden.js';
import { backendsWithThreads } from '../backends.js';
import { TOL, FD_TOL, fcOptions, values, dim, smallDim, seed, special, rand, linear64, fdGrad, expectIncrement } from './common.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);

describe.each(BACKENDS)('linear [%s]', (name, kern) => {
  const fcOpts = fcOptions(name);

  it('linear equals ref, with and without bias', () => {
    fc.assert(
      fc.property(dim, dim, dim, seed, special, fc.boolean(), (M, K, N, s, sp, bias) => {
        const x = values(s, M * K, sp);
        const w = values(s + 1, N * K, sp);
        const b = bias ? values(s + 2, N, sp) : null;
        const got = new Float32Array(M * N).fill(NaN);
        const want = new Float32Array(M * N);
        kern.linear(got, x, w, b, M, K, N);
        refKernels.linear(want, x, w, b, M, K, N);
        expectClose(`linear ${M}x${K}x${N}`, got, want, TOL);
      }),
      fcOpts,
    );
  });

  it('linearBackward equals ref (accumulating into non-zero gradients, any of dx, dw, db null)', () => {
    fc.assert(
      fc.property(dim, dim, dim, seed, special, fc.constantFrom(0, 1, 2, 3), (M, K, N, s, sp, nulls) => {
        const dout = values(s, M * N, sp);
        const x = values(s + 1, M * K, sp);
        const w = values(s + 2, N * K, sp);
        const init = [values(s + 3, M * K, 0), values(s + 4, N * K, 0), values(s + 5, N, 0)];
        const got = init.map((a) => a.slice());
        const want = init.map((a) => a.slice());
        const pick = (a: Float32Array[], i: number) => (nulls === i + 1 ? null : a[i]);
        kern.linearBackward(pick(got, 0), pick(got, 1), pick(got, 2), dout, x, w, M, K, N);
        refKernels.linearBackward(pick(want, 0), pick(want, 1), pick(want, 2), dout, x, w, M, K, N);
        ['dx', 'dw', 'db'].forEach((n, i) => expectClose(`${n} ${M}x${K}x${N}`, got[i], want[i], TOL));
      }),
      fcOpts,
    );
  });

  it('linearBackward matches finite differences', () => {
    fc.assert(
      fc.property(smallDim, smallDim, smallDim, seed, (M, K, N, s) => {
        const x = rand(s, M * K);
        const w = rand(s + 1, N * K);
        const b = rand(s + 2, N);
        const dout = rand(s + 3, M * N);
        const before = [rand(s + 4, M * K), rand(s + 5, N * K), rand(s + 6, N)];
        const after = before.map((a) => a.slice());
        kern.linearBackward(after[0], after[1], after[2], dout, x, w, M, K, N);
        const f = (p: Float64Array[]) => linear64(p[0], p[1], p[2], M, K, N);
        ['dx', 'dw', 'db'].forEach((n, i) => expectIncrement(`fd linear ${n}`, after[i], before[i], fdGrad([x, w, b], i, dout, f), FD_TOL));
      }),
      { ...fcOpts, numRuns: 8 },
    );
  });

  it('zero-sized dimensions do nothing and throw nothing', () => {
    const out = new Float32Array(4).fill(7);
    kern.linear(out, new Float32Array(0), new Float32Array(6), null, 0, 3, 2);
    expect([...out]).toEqual([7, 7, 7, 7]);
    kern.linear(out, new Float32Array(0), new Float32Array(0), new Float32Array([1, 2]), 2, 0, 2);
    expect([...out]).toEqual([1, 2, 1, 2]);
  });
});
