/**
 * LayerNorm (ref/layernorm.ts, wasm/assembly/layernorm.ts) and its backward on every backend:
 * equal to refKernels with and without affine.
 * Then its backward against float64 central finite differences of the float64 twin here.
 * Backends, inputs and tolerances: spec/ops/common.ts.
 */
import { describe, it, afterAll } from 'vitest';
import fc from 'fast-check';
import { refKernels } from '../../ref/refKernels.js';
import { expectClose } from '../golden.js';
import { backendsWithThreads } from '../backends.js';
import { TOL, FD_TOL, fcOptions, values, dim, smallDim, seed, special, rand, fdGrad, expectIncrement } from './common.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);

function layerNorm64(x: Float64Array, w: Float64Array | null, b: Float64Array | null, M: number, D: number, eps: number): Float64Array {
  const y = new Float64Array(M * D);
  for (let m = 0; m < M; m++) {
    let mu = 0;
    for (let i = 0; i < D; i++) mu += x[m * D + i] / D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[m * D + i] - mu) ** 2 / D;
    for (let i = 0; i < D; i++) {
      const n = (x[m * D + i] - mu) / Math.sqrt(v + eps);
      y[m * D + i] = w ? n * w[i] + (b ? b[i] : 0) : n;
    }
  }
  return y;
}

describe.each(BACKENDS)('layerNorm [%s]', (name, kern) => {
  const fcOpts = fcOptions(name);

  it('layerNorm and layerNormBackward equal ref, with and without affine', () => {
    fc.assert(
      fc.property(dim, dim, seed, special, fc.boolean(), (M, D, s, sp, affine) => {
        const x = values(s, M * D, sp);
        const w = affine ? values(s + 1, D, sp) : null;
        const b = affine ? values(s + 2, D, sp) : null;
        const out = [new Float32Array(M * D), new Float32Array(M), new Float32Array(M)];
        const ref = [new Float32Array(M * D), new Float32Array(M), new Float32Array(M)];
        kern.layerNorm(out[0], out[1], out[2], x, w, b, M, D, 1e-6);
        refKernels.layerNorm(ref[0], ref[1], ref[2], x, w, b, M, D, 1e-6);
        ['out', 'mean', 'rstd'].forEach((n, i) => expectClose(`layerNorm ${n} ${M}x${D}`, out[i], ref[i], TOL));
        const dout = values(s + 3, M * D, sp);
        const init = [values(s + 4, M * D, 0), values(s + 5, D, 0), values(s + 6, D, 0)];
        const got = init.map((a) => a.slice());
        const want = init.map((a) => a.slice());
        kern.layerNormBackward(got[0], affine ? got[1] : null, affine ? got[2] : null, dout, x, w, ref[1], ref[2], M, D);
        refKernels.layerNormBackward(want[0], affine ? want[1] : null, affine ? want[2] : null, dout, x, w, ref[1], ref[2], M, D);
        ['dx', 'dw', 'db'].forEach((n, i) => expectClose(`layerNormBackward ${n} ${M}x${D}`, got[i], want[i], TOL));
      }),
      fcOpts,
    );
  });

  it('layerNormBackward matches finite differences (affine and not)', () => {
    fc.assert(
      fc.property(smallDim, fc.integer({ min: 2, max: 24 }), seed, fc.boolean(), (M, D, s, affine) => {
        const x = rand(s, M * D);
        const w = affine ? rand(s + 1, D) : null;
        const b = affine ? rand(s + 2, D) : null;
        const dout = rand(s + 3, M * D);
        const mean = new Float32Array(M);
        const rstd = new Float32Array(M);
        kern.layerNorm(new Float32Array(M * D), mean, rstd, x, w, b, M, D, 1e-5);
        const before = [rand(s + 4, M * D), rand(s + 5, D), rand(s + 6, D)];
        const after = before.map((a) => a.slice());
        kern.layerNormBackward(after[0], affine ? after[1] : null, affine ? after[2] : null, dout, x, w, mean, rstd, M, D);
        const params = affine ? [x, w!, b!] : [x];
        const f = (p: Float64Array[]) => layerNorm64(p[0], affine ? p[1] : null, affine ? p[2] : null, M, D, 1e-5);
        params.forEach((_, i) => expectIncrement(`fd layerNorm ${['dx', 'dw', 'db'][i]}`, after[i], before[i], fdGrad(params, i, dout, f), FD_TOL));
      }),
      { ...fcOpts, numRuns: 8 },
    );
  });
});
