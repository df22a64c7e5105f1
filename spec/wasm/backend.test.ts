/**
 * The wasm backend's memory (wasm/backend.ts, wasm/arena.ts): the packed-weight cache (in-place
 * updates with and without weightsChanged, subarray views, no scratch left behind) and the
 * memory's growth under a large call. Tolerance 1e-5 as in spec/ops/common.ts.
 */
import { describe, it, expect } from 'vitest';
import type { Kernels } from '../../ref/kernels.js';
import { refKernels } from '../../ref/refKernels.js';
import { createWasmKernelsSync } from '../../wasm/node.js';
import { expectClose } from '../golden.js';
import { TOL, values } from '../ops/common.js';

describe('wasm memory', () => {
  it('repacks a weight changed in place (after weightsChanged, and by fingerprint without it); subarray views hit the cache', () => {
    const k = createWasmKernelsSync();
    const baseline = k.arena.bytesInUse; // the edge tile only
    const [M, K, N] = [3, 20, 18];
    const x = values(1, M * K, 0);
    const store = values(2, 2 * N * K, 0);
    const w = store.subarray(N * K);
    const run = (kern: Kernels) => {
      const out = new Float32Array(M * N);
      kern.linear(out, x, w, null, M, K, N);
      return out;
    };
    expectClose('first', run(k), run(refKernels), TOL);
    const used = k.arena.bytesInUse;
    run(k);
    k.linear(new Float32Array(M * N), x, store.subarray(N * K), null, M, K, N); // a new view of the same bytes
    expect(k.arena.bytesInUse).toBe(used);
    for (let i = 0; i < w.length; i++) w[i] *= -2; // the optimiser's in-place update
    k.weightsChanged();
    expectClose('after weightsChanged', run(k), run(refKernels), TOL);
    for (let i = 0; i < w.length; i++) w[i] += 0.5; // and without telling
    expectClose('changed silently', run(k), run(refKernels), TOL);
    // every kernel frees its scratch: only packed weights stay, and weightsChanged drops them
    const g = values(5, 3 * 5, 0);
    k.swigluBackward(new Float32Array(M * K), new Float32Array(5 * K), new Float32Array(5 * K), new Float32Array(K * 5), values(6, M * K, 0), x, g, g, values(7, 5 * K, 0), values(8, 5 * K, 0), values(9, K * 5, 0), M, K, 5);
    k.attention(new Float32Array(2 * 3 * 4), null, values(10, 2 * 3 * 12, 0), 2, 3, 2, 2);
    expect(k.arena.bytesInUse).toBeGreaterThan(baseline);
    k.weightsChanged();
    expect(k.arena.bytesInUse).toBe(baseline);
  });

  it('grows the memory for a large call and stays correct (views rebuilt)', () => {
    const k = createWasmKernelsSync();
    const before = k.arena.memory.buffer.byteLength;
    const [M, K, N] = [300, 700, 600]; // ~5 MiB of operands, more than the initial 1 MiB
    const x = values(3, M * K, 0);
    const w = values(4, N * K, 0);
    const out = new Float32Array(M * N);
    const ref = new Float32Array(M * N);
    k.linear(out, x, w, null, M, K, N);
    refKernels.linear(ref, x, w, null, M, K, N);
    expect(k.arena.memory.buffer.byteLength).toBeGreaterThan(before);
    expectClose('after growth', out, ref, TOL);
  });
});
