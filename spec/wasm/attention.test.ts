/**
 * The attention head forwards of wasm/assembly/attention.ts (whole P, and fused R rows at a
 * time with its scratch guarded against overruns) against the in-module naive oracle.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createWasmKernelsSync } from '../../wasm/node.js';
import { expectClose } from '../golden.js';
import { TOL, values, seed } from '../ops/common.js';


const wasm = createWasmKernelsSync();

describe('wasm attention heads', () => {
  const e = wasm.exports;
  const a = wasm.arena;

  it('one attention head on the GEMM equals its naive oracle (strided q, k, v, out)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(1, 3, 5, 17, 129), fc.integer({ min: 1, max: 40 })), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 7 }), seed, (T, Dh, pad, s) => {
        const ld = 3 * Dh + pad;
        const qkv = values(s, T * ld, 0.05, false).map((v) => 3 * v);
        const ldo = Dh + pad;
        const L = Math.max(T, Dh);
        const pq = a.put(qkv);
        const out1 = a.zeros(T * ldo);
        const out2 = a.zeros(T * ldo);
        const p1 = a.alloc(T * T);
        const p2 = a.alloc(T * T);
        const ap = a.alloc(e.packedASize(T, L));
        const bp = a.alloc(e.packedBSize(L, L));
        const tile = a.alloc(32);
        const scale = 1 / Math.sqrt(Dh);
        e.attentionHeadForward(out1, ldo, p1, pq, pq + Dh * 4, pq + 2 * Dh * 4, ld, T, Dh, scale, ap, bp, tile);
        e.attentionHeadNaive(out2, ldo, p2, pq, pq + Dh * 4, pq + 2 * Dh * 4, ld, T, Dh, scale);
        const got = [new Float32Array(T * ldo), new Float32Array(T * T)];
        const want = [new Float32Array(T * ldo), new Float32Array(T * T)];
        a.get(got[0], out1);
        a.get(want[0], out2);
        a.get(got[1], p1);
        a.get(want[1], p2);
        for (const p of [pq, out1, out2, p1, p2, ap, bp, tile]) a.release(p);
        expectClose(`head out T${T} Dh${Dh} pad ${pad}`, got[0], want[0], TOL);
        expectClose(`head probs T${T} Dh${Dh}`, got[1], want[1], TOL);
      }),
      { numRuns: 30, seed: 11 },
    );
  });

  it('the fused head forward (R rows at a time) equals the naive oracle and stays in its scratch', () => {
    const GUARD = 16;
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(1, 3, 5, 16, 17, 33, 129), fc.integer({ min: 1, max: 40 })),
        fc.integer({ min: 1, max: 20 }),
        fc.oneof(fc.constantFrom(1, 2, 3, 16, 32), fc.integer({ min: 1, max: 40 })),
        fc.integer({ min: 0, max: 7 }),
        seed,
        (T, Dh, R, pad, s) => {
          const ld = 3 * Dh + pad;
          const qkv = values(s, T * ld, 0.05, false).map((v) => 3 * v);
          const ldo = Dh + pad;
          const L = Math.max(T, Dh);
          const out0 = values(s + 1, T * ldo, 0);
          const pq = a.put(qkv);
          const out1 = a.put(out0);
          const out2 = a.put(out0);
          const pn = a.alloc(T * T);
          // the documented scratch sizes, each followed by a guard that must stay untouched
          const sizes = [R * T, e.packedASize(R, L), e.packedBSize(T, Dh), e.packedBSize(Dh, T), 32];
          const guard = values(s + 2, GUARD, 0);
          const blocks = sizes.map((n) => {
            const p = a.alloc(n + GUARD);
            const g = new Float32Array(n + GUARD).fill(NaN);
            g.set(guard, n);
            a.f32.set(g, p / 4);
            return p;
          });
          const [st, ap, kp, vp, tile] = blocks;
          const scale = 1 / Math.sqrt(Dh);
          e.attentionHeadForwardTiled(out1, ldo, pq, pq + Dh * 4, pq + 2 * Dh * 4, ld, T, Dh, scale, R, st, ap, kp, vp, tile);
          e.attentionHeadNaive(out2, ldo, pn, pq, pq + Dh * 4, pq + 2 * Dh * 4, ld, T, Dh, scale);
          const got = new Float32Array(T * ldo);
          const want = new Float32Array(T * ldo);
          a.get(got, out1);
          a.get(want, out2);
          const guards = blocks.map((p, i) => a.f32.slice(p / 4 + sizes[i], p / 4 + sizes[i] + GUARD));
          for (const p of [pq, out1, out2, pn, ...blocks]) a.release(p);
          expectClose(`fused head T${T} Dh${Dh} R${R} pad ${pad}`, got, want, TOL);
          guards.forEach((g, i) => expect(g, `scratch ${i} overrun`).toEqual(guard));
          // the padding columns of out are untouched
          for (let t = 0; t < T; t++) for (let j = Dh; j < ldo; j++) expect(got[t * ldo + j]).toBe(out0[t * ldo + j]);
        },
      ),
      { numRuns: 40, seed: 13 },
    );
  });
});
