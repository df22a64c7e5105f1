/**
 * SwiGLU (ref/swiglu.ts, wasm/assembly/swiglu.ts) and its backward on every backend: equal to
 * refKernels; the batch of experts (swigluExperts and its backward) equal to swiglu on each
 * expert in turn to the bit, on lists with empty and one-row experts, with and without calls
 * that share their dx (which must not run side by side), and the 2-thread backend must have run
 * them side by side.
 * Then its backward against float64 central finite differences of the float64 twin here.
 * Backends, inputs and tolerances: spec/ops/common.ts.
 */
import { describe, it, expect, afterAll, vi } from 'vitest';
import fc from 'fast-check';
import { refKernels } from '../../ref/refKernels.js';
import { expectClose } from '../golden.js';
import { backendsWithThreads } from '../backends.js';
import type { Kernels } from '../../ref/kernels.js';
import { rng } from '../random.js';
import { TOL, FD_TOL, fcOptions, values, dim, smallDim, seed, special, rand, linear64, fdGrad, expectIncrement } from './common.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);

function swiglu64(x: Float64Array, wg: Float64Array, wu: Float64Array, wd: Float64Array, M: number, D: number, F: number): Float64Array {
  const g = linear64(x, wg, null, M, D, F);
  const u = linear64(x, wu, null, M, D, F);
  const h = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]);
  return linear64(h, wd, null, M, F, D);
}

describe.each(BACKENDS)('swiglu [%s]', (name, kern) => {
  const fcOpts = fcOptions(name);

  it('swigluExperts and its backward equal swiglu on each expert in turn (side by side where the threads allow) and ref', () => {
    const Ms = fc.array(fc.oneof(fc.constantFrom(0, 1, 3, 17), fc.integer({ min: 1, max: 40 })), { minLength: 1, maxLength: 5 });
    const runs: string[] = [];
    const spy = 'runCalls' in kern ? vi.spyOn(kern as unknown as { runCalls: (calls: [string, number[]][]) => void }, 'runCalls') : null;
    fc.assert(
      fc.property(Ms, fc.integer({ min: 1, max: 24 }), seed, fc.boolean(), (Mlist, D, s, sharedDx) => {
        spy?.mockClear();
        const r = rng(s);
        const experts = Mlist.map((M, i) => ({ M, F: 1 + Math.floor(r() * 20), seed: s + 100 * i }));
        const weights = experts.map(({ F, seed: q }) => ({ gate: values(q + 1, F * D, 0), up: values(q + 2, F * D, 0), down: values(q + 3, D * F, 0) }));
        const xs = experts.map(({ M, seed: q }) => values(q + 4, M * D, 0));
        const fwd = (k: Kernels, batched: boolean) => {
          const outs = experts.map(({ M, F }) => [new Float32Array(M * D).fill(NaN), new Float32Array(M * F), new Float32Array(M * F)]);
          const calls = experts.map(({ M, F }, i) => ({ out: outs[i][0], gate: outs[i][1], up: outs[i][2], x: xs[i], w: weights[i], M, F }));
          if (batched) k.swigluExperts(calls, D);
          else for (const c of calls) k.swiglu(c.out, c.gate, c.up, c.x, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
          return outs;
        };
        const [got, oneByOne, want] = [fwd(kern, true), fwd(kern, false), fwd(refKernels, true)];
        got.forEach((o, i) => o.forEach((a, j) => {
          expect(a, `expert ${i} output ${j}`).toEqual(oneByOne[i][j]);
          expectClose(`swigluExperts expert ${i} output ${j}`, a, want[i][j], TOL);
        }));
        // backward; with sharedDx every expert accumulates into one dx (calls that may not run side by side)
        const Mmax = Math.max(...Mlist);
        const bwd = (k: Kernels, batched: boolean) => {
          const shared = values(s + 7, Mmax * D, 0);
          const grads = experts.map(({ M, F, seed: q }) => ({ dx: sharedDx ? shared : values(q + 5, M * D, 0), dw: { gate: values(q + 6, F * D, 0), up: values(q + 7, F * D, 0), down: values(q + 8, D * F, 0) } }));
          const calls = experts.map(({ M, F, seed: q }, i) => ({ ...grads[i], dout: values(q + 9, M * D, 0), x: xs[i], gate: want[i][1], up: want[i][2], w: weights[i], M, F }));
          if (batched) k.swigluExpertsBackward(calls, D);
          else for (const c of calls) k.swigluBackward(c.dx, c.dw.gate, c.dw.up, c.dw.down, c.dout, c.x, c.gate, c.up, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
          return grads.flatMap((g) => [g.dx, g.dw.gate, g.dw.up, g.dw.down]);
        };
        const [bGot, bOneByOne, bWant] = [bwd(kern, true), bwd(kern, false), bwd(refKernels, true)];
        bGot.forEach((a, i) => {
          expect(a, `backward output ${i}`).toEqual(bOneByOne[i]);
          expectClose(`swigluExpertsBackward output ${i}`, a, bWant[i], TOL);
        });
        for (const call of spy?.mock.calls ?? []) runs.push(...call[0].map(([fn]) => fn));
      }),
      fcOpts,
    );
    // on two threads the experts did run whole side by side, forward and backward
    if (name === 'wasm 2 threads') expect(runs).toEqual(expect.arrayContaining(['swigluRowsForward', 'swigluRowsBackward']));
    spy?.mockRestore();
  });

  it('swiglu and swigluBackward equal ref', () => {
    fc.assert(
      fc.property(dim, dim, dim, seed, special, fc.boolean(), (M, D, F, s, sp, save) => {
        const x = values(s, M * D, sp);
        const wg = values(s + 1, F * D, sp);
        const wu = values(s + 2, F * D, sp);
        const wd = values(s + 3, D * F, sp);
        const out = new Float32Array(M * D).fill(NaN);
        const outRef = new Float32Array(M * D);
        const g = new Float32Array(M * F);
        const u = new Float32Array(M * F);
        const gRef = new Float32Array(M * F);
        const uRef = new Float32Array(M * F);
        kern.swiglu(out, save ? g : null, save ? u : null, x, wg, wu, wd, M, D, F);
        refKernels.swiglu(outRef, gRef, uRef, x, wg, wu, wd, M, D, F);
        expectClose(`swiglu ${M}x${D}x${F}`, out, outRef, TOL);
        if (save) {
          expectClose('swiglu gate', g, gRef, TOL);
          expectClose('swiglu up', u, uRef, TOL);
        }
        const dout = values(s + 4, M * D, sp);
        const init = [values(s + 5, M * D, 0), values(s + 6, F * D, 0), values(s + 7, F * D, 0), values(s + 8, D * F, 0)];
        const got = init.map((a) => a.slice());
        const want = init.map((a) => a.slice());
        kern.swigluBackward(got[0], got[1], got[2], got[3], dout, x, gRef, uRef, wg, wu, wd, M, D, F);
        refKernels.swigluBackward(want[0], want[1], want[2], want[3], dout, x, gRef, uRef, wg, wu, wd, M, D, F);
        ['dx', 'dwg', 'dwu', 'dwd'].forEach((n, i) => expectClose(`swigluBackward ${n} ${M}x${D}x${F}`, got[i], want[i], TOL));
      }),
      fcOpts,
    );
  });


  it('swigluBackward matches finite differences', () => {
    fc.assert(
      fc.property(smallDim, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), seed, (M, D, F, s) => {
        const x = rand(s, M * D);
        const wg = rand(s + 1, F * D);
        const wu = rand(s + 2, F * D);
        const wd = rand(s + 3, D * F);
        const dout = rand(s + 4, M * D);
        const g = new Float32Array(M * F);
        const u = new Float32Array(M * F);
        kern.swiglu(new Float32Array(M * D), g, u, x, wg, wu, wd, M, D, F);
        const before = [rand(s + 5, M * D), rand(s + 6, F * D), rand(s + 7, F * D), rand(s + 8, D * F)];
        const after = before.map((a) => a.slice());
        kern.swigluBackward(after[0], after[1], after[2], after[3], dout, x, g, u, wg, wu, wd, M, D, F);
        const f = (p: Float64Array[]) => swiglu64(p[0], p[1], p[2], p[3], M, D, F);
        ['dx', 'dwg', 'dwu', 'dwd'].forEach((n, i) => expectIncrement(`fd swiglu ${n}`, after[i], before[i], fdGrad([x, wg, wu, wd], i, dout, f), FD_TOL));
      }),
      { ...fcOpts, numRuns: 8 },
    );
  });
});
