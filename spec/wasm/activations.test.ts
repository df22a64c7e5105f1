/**
 * wasm/assembly/activations.ts: exp4 within 4 ulp of Math.exp, SiLU and its backward equal to
 * the reference activations.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createWasmKernelsSync } from '../../wasm/node.js';
import { expectClose } from '../golden.js';
import { TOL, RUNS, values, dim, seed, special } from '../ops/common.js';
import { siluForward, siluBackward } from '../../ref/activations.js';

const wasm = createWasmKernelsSync();

describe('wasm activations', () => {
  const e = wasm.exports;
  const a = wasm.arena;

  it('exp4 is within 4 ulp of Math.exp on [-87, 88], and in [0, e^-87.3] below', () => {
    const n = 20001;
    const x = Float32Array.from({ length: n }, (_, i) => -87 + (175 * i) / (n - 1));
    const px = a.put(x);
    const po = a.alloc(n);
    e.expArray(po, px, n);
    const y = new Float32Array(n);
    a.get(y, po);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[i] - Math.exp(x[i])) / Math.exp(x[i]));
    expect(worst).toBeLessThan(4 * 2 ** -23);
    const low = Float32Array.from([-88, -100, -1e4, -Infinity]);
    const pl = a.put(low);
    e.expArray(pl, pl, 4);
    const yl = new Float32Array(4);
    a.get(yl, pl);
    for (const v of yl) expect(v >= 0 && v < 1.3e-38, `exp4 of a large negative gave ${v}`).toBe(true);
    for (const p of [px, po, pl]) a.release(p);
  });

  it('silu and its backward equal the reference activations', () => {
    fc.assert(
      fc.property(dim, seed, special, (n, s, sp) => {
        const x = values(s, n, sp).map((v, i) => (i % 7 === 0 ? v * 30 : v * 3));
        const got = new Float32Array(n);
        const want = new Float32Array(n);
        wasm.silu(got, x, n);
        siluForward(want, x, n);
        expectClose('silu', got, want, TOL);
        const dout = values(s + 1, n, sp);
        const init = values(s + 2, n, 0);
        const dgot = init.slice();
        const dwant = init.slice();
        wasm.siluBackward(dgot, dout, x, n);
        siluBackward(dwant, dout, x, n);
        expectClose('silu backward', dgot, dwant, TOL);
      }),
      { numRuns: RUNS, seed: 7 },
    );
  });
});
