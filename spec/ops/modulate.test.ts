/**
 * adaLN modulation and the gated residual (ref/modulate.ts, wasm/assembly/modulate.ts) and
 * their backwards on every backend: equal to refKernels.
 * Then its backward against float64 central finite differences of the float64 twin here.
 * Backends, inputs and tolerances: spec/ops/common.ts.
 * (Their float64 twins are one line each, inline.)
 */
import { describe, it, afterAll } from 'vitest';
import fc from 'fast-check';
import { refKernels } from '../../ref/refKernels.js';
import { expectClose } from '../golden.js';
import { backendsWithThreads } from '../backends.js';
import { TOL, FD_TOL, fcOptions, values, dim, smallDim, seed, special, rand, fdGrad, expectIncrement } from './common.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);

describe.each(BACKENDS)('modulate [%s]', (name, kern) => {
  const fcOpts = fcOptions(name);

  it('modulate, gatedResidual and their backwards equal ref', () => {
    const Bs = fc.oneof(fc.constantFrom(1, 2, 3, 5), fc.integer({ min: 1, max: 9 }));
    fc.assert(
      fc.property(Bs, dim, dim, seed, special, (B, T, D, s, sp) => {
        const x = values(s, B * T * D, sp);
        const [shift, scale, gate] = [values(s + 1, B * D, sp), values(s + 2, B * D, sp), values(s + 3, B * D, sp)];
        const got = new Float32Array(B * T * D).fill(NaN);
        const want = new Float32Array(B * T * D);
        kern.modulate(got, x, shift, scale, B, T, D);
        refKernels.modulate(want, x, shift, scale, B, T, D);
        expectClose(`modulate ${B}x${T}x${D}`, got, want, TOL);
        const f = values(s + 4, B * T * D, sp);
        const [res, resRef] = [values(s + 5, B * T * D, 0), values(s + 5, B * T * D, 0)];
        kern.gatedResidual(res, f, gate, B, T, D);
        refKernels.gatedResidual(resRef, f, gate, B, T, D);
        expectClose(`gatedResidual ${B}x${T}x${D}`, res, resRef, TOL);
        const dout = values(s + 6, B * T * D, sp);
        const init = [values(s + 7, B * T * D, 0), values(s + 8, B * D, 0), values(s + 9, B * D, 0)];
        const [g, w] = [init.map((a) => a.slice()), init.map((a) => a.slice())];
        kern.modulateBackward(g[0], g[1], g[2], dout, x, scale, B, T, D);
        refKernels.modulateBackward(w[0], w[1], w[2], dout, x, scale, B, T, D);
        ['dx', 'dshift', 'dscale'].forEach((n, i) => expectClose(`modulateBackward ${n} ${B}x${T}x${D}`, g[i], w[i], TOL));
        const [g2, w2] = [init.slice(0, 2).map((a) => a.slice()), init.slice(0, 2).map((a) => a.slice())];
        kern.gatedResidualBackward(g2[0], g2[1], dout, f, gate, B, T, D);
        refKernels.gatedResidualBackward(w2[0], w2[1], dout, f, gate, B, T, D);
        ['df', 'dgate'].forEach((n, i) => expectClose(`gatedResidualBackward ${n} ${B}x${T}x${D}`, g2[i], w2[i], TOL));
      }),
      fcOpts,
    );
  });

  it('modulateBackward and gatedResidualBackward match finite differences', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), smallDim, smallDim, seed, (B, T, D, s) => {
        const n = B * T * D;
        // y = x·(1 + scale[b]) + shift[b] and y = x + gate[b]·f, per token of sequence b
        const perToken = (y: (i: number, bd: number) => number) => Float64Array.from({ length: n }, (_, i) => y(i, Math.floor(i / (T * D)) * D + (i % D)));
        const [x, shift, scale, dout] = [rand(s, n), rand(s + 1, B * D), rand(s + 2, B * D), rand(s + 3, n)];
        const before = [rand(s + 4, n), rand(s + 5, B * D), rand(s + 6, B * D)];
        const after = before.map((a) => a.slice());
        kern.modulateBackward(after[0], after[1], after[2], dout, x, scale, B, T, D);
        const mod = (p: Float64Array[]) => perToken((i, bd) => p[0][i] * (1 + p[2][bd]) + p[1][bd]);
        ['dx', 'dshift', 'dscale'].forEach((name, i) => expectIncrement(`fd modulate ${name}`, after[i], before[i], fdGrad([x, shift, scale], i, dout, mod), FD_TOL));
        const [f, gate] = [rand(s + 7, n), rand(s + 8, B * D)];
        const after2 = before.slice(0, 2).map((a) => a.slice());
        kern.gatedResidualBackward(after2[0], after2[1], dout, f, gate, B, T, D);
        const res = (p: Float64Array[]) => perToken((i, bd) => x[i] + p[1][bd] * p[0][i]);
        ['df', 'dgate'].forEach((name, i) => expectIncrement(`fd gatedResidual ${name}`, after2[i], before[i], fdGrad([f, gate], i, dout, res), FD_TOL));
      }),
      { ...fcOpts, numRuns: 8 },
    );
  });
});
