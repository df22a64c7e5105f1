/**
 * The MoE dispatch and combine kernels (ref/moeExperts.ts, wasm/assembly/moe.ts) on every
 * backend: gatherRows exact, scatterAddRows (weighted and not) and scatterAddRowsBackward equal
 * to refKernels. Backends, inputs and tolerances: spec/ops/common.ts.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { refKernels } from '../../ref/refKernels.js';
import { expectClose } from '../golden.js';
import { backendsWithThreads } from '../backends.js';
import { rng } from '../random.js';
import { TOL, fcOptions, values, dim, seed, special } from './common.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);

describe.each(BACKENDS)('moeExperts [%s]', (name, kern) => {
  const fcOpts = fcOptions(name);

  it('gatherRows, scatterAddRows (weighted and not) and scatterAddRowsBackward equal ref', () => {
    fc.assert(
      fc.property(dim, dim, fc.constantFrom(1, 2, 3), seed, special, fc.boolean(), (M, D, k, s, sp, weighted) => {
        const r = rng(s);
        const slots = Int32Array.from({ length: M * k }, (_, i) => i).filter(() => r() < 0.5); // one expert's slots, in order
        const n = slots.length;
        const x = values(s, M * D, sp);
        const [got, want] = [new Float32Array(n * D).fill(NaN), new Float32Array(n * D)];
        kern.gatherRows(got, x, slots, k, D);
        refKernels.gatherRows(want, x, slots, k, D);
        expect(got).toEqual(want); // copies: exact
        const [y, weight] = [values(s + 1, n * D, sp), values(s + 2, M * k, sp)];
        const [out, outRef] = [values(s + 3, M * D, 0), values(s + 3, M * D, 0)];
        kern.scatterAddRows(out, y, slots, weighted ? weight : null, k, D);
        refKernels.scatterAddRows(outRef, y, slots, weighted ? weight : null, k, D);
        expectClose(`scatterAddRows ${M}x${D} k ${k}`, out, outRef, TOL);
        const dout = values(s + 4, M * D, sp);
        const [dy, dyRef] = [new Float32Array(n * D).fill(NaN), new Float32Array(n * D)];
        const [dw, dwRef] = [values(s + 5, M * k, 0), values(s + 5, M * k, 0)]; // slots of other experts keep theirs
        kern.scatterAddRowsBackward(dy, dw, dout, y, slots, weight, k, D);
        refKernels.scatterAddRowsBackward(dyRef, dwRef, dout, y, slots, weight, k, D);
        expectClose(`scatterAddRowsBackward dy ${M}x${D}`, dy, dyRef, TOL);
        expectClose(`scatterAddRowsBackward dweight ${M}x${D}`, dw, dwRef, TOL);
      }),
      fcOpts,
    );
  });
});
