/**
 * The packed GEMM (wasm/assembly/gemm.ts) against its in-module naive oracle: every packer,
 * padded strides, edges, K past one block, adding to C or overwriting it. Tolerance 1e-5 as in
 * spec/ops/common.ts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createWasmKernelsSync } from '../../wasm/node.js';
import { expectClose } from '../golden.js';
import { TOL, values, dim, seed } from '../ops/common.js';


const wasm = createWasmKernelsSync();

describe('wasm gemm', () => {
  const e = wasm.exports;
  const a = wasm.arena;

  it('the packed GEMM equals its naive oracle for every operand form, strides and edges, adding to C or overwriting it', () => {
    // K past one K block (256) too: the blocks after the first add to it when overwriting
    const Ks = fc.oneof(dim, fc.constantFrom(0, 257, 300));
    fc.assert(
      fc.property(dim, dim, Ks, fc.integer({ min: 0, max: 5 }), fc.boolean(), fc.boolean(), fc.boolean(), seed, (M, N, K, pad, aTrans, bNK, overwrite, s) => {
        const lda = (aTrans ? M : K) + pad;
        const ldb = (bNK ? K : N) + pad;
        const ldc = N + pad;
        const A = values(s, (aTrans ? K : M) * lda, 0.05);
        const B = values(s + 1, (bNK ? N : K) * ldb, 0.05);
        const C = values(s + 2, M * ldc, 0);
        const pa = a.put(A);
        const pb = a.put(B);
        const pc = a.put(C);
        const pc2 = a.put(overwrite ? C.map((v, i) => (i % ldc < N ? 0 : v)) : C); // overwriting: the oracle adds to zeros
        const ap = a.alloc(e.packedASize(M, K));
        const bp = a.alloc(e.packedBSize(N, K));
        const tile = a.alloc(32);
        if (aTrans) e.packACols(ap, pa, lda, M, K);
        else e.packARows(ap, pa, lda, M, K);
        if (bNK) e.packBNK(bp, pb, ldb, N, K);
        else e.packBKN(bp, pb, ldb, N, K);
        e.gemmPacked(pc, ldc, ap, bp, M, N, K, tile, overwrite ? 1 : 0);
        e.gemmNaive(pc2, ldc, pa, lda, aTrans ? 1 : 0, pb, ldb, bNK ? 1 : 0, M, N, K);
        const got = new Float32Array(M * ldc);
        const want = new Float32Array(M * ldc);
        a.get(got, pc);
        a.get(want, pc2);
        for (const p of [pa, pb, pc, pc2, ap, bp, tile]) a.release(p);
        expectClose(`gemm ${M}x${K}x${N} pad ${pad} aT ${aTrans} bNK ${bNK} overwrite ${overwrite}`, got, want, TOL);
        // the padding columns of C are untouched
        for (let m = 0; m < M; m++) for (let j = N; j < ldc; j++) expect(got[m * ldc + j]).toBe(C[m * ldc + j]);
      }),
      { numRuns: 60, seed: 42 },
    );
  });
});
