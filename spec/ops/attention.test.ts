/**
 * Attention (ref/attention.ts, wasm/assembly/attention.ts) and its backward on every backend:
 * equal to refKernels, probs written or not. Attention without probs (on wasm the fused eval
 * forward, R query rows at a time) is also checked on scores up to +1e2 (exp overflows float32
 * there: only a max-subtracting softmax passes), built exact in float32 so the comparison stays
 * well conditioned (largeScores).
 * Inputs stay within ±4 (plus zeros and denormals): at |q|,|k| ~ 1e4 the logits are ~1e8 and
 * their float32 rounding alone (~6) decides the softmax, so no two float32 orders of summation
 * agree there — an ill-conditioned input, not a kernel property.
 * Then its backward against float64 central finite differences of the float64 twin here.
 * Backends, inputs and tolerances: spec/ops/common.ts.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { refKernels } from '../../ref/refKernels.js';
import { expectClose } from '../golden.js';
import { backendsWithThreads } from '../backends.js';
import { rng } from '../random.js';
import { TOL, FD_TOL, fcOptions, values, seed, special, rand, fdGrad, expectIncrement } from './common.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);

function attention64(qkv: Float64Array, B: number, T: number, H: number, Dh: number): Float64Array {
  const D = H * Dh;
  const y = new Float64Array(B * T * D);
  const at = (b: number, t: number, j: number, h: number, d: number) => qkv[((b * T + t) * 3 + j) * D + h * Dh + d];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const s = new Float64Array(T);
        for (let u = 0; u < T; u++) {
          for (let d = 0; d < Dh; d++) s[u] += at(b, t, 0, h, d) * at(b, u, 1, h, d);
          s[u] /= Math.sqrt(Dh);
        }
        const mx = Math.max(...s);
        let z = 0;
        for (let u = 0; u < T; u++) z += Math.exp(s[u] - mx);
        for (let u = 0; u < T; u++) {
          const p = Math.exp(s[u] - mx) / z;
          for (let d = 0; d < Dh; d++) y[(b * T + t) * D + h * Dh + d] += p * at(b, u, 2, h, d);
        }
      }
  return y;
}

/**
 * qkv [B, T, 3, H, Dh] whose scores q·k/√Dh reach about +1e2 in each head (exp(100) overflows
 * float32: only a softmax that subtracts the row max gets these right), and yet are exact in
 * float32, so that the comparison with ref stays well conditioned: k is a multiple of 1/8 in
 * [-1, 1], q one of 1/8 scaled per head (its sign too) so that the score largest in magnitude
 * is +100; every product and partial sum of q·k is then a multiple of 1/64 below 2^18, exact.
 * Kernel and ref differ by one rounding of each logit (≤ 1 ulp, 7.6e-6 at 100), and v in
 * [-1/4, 1/4] keeps the output's error under 1e-5. Returns qkv and its largest score.
 */
function largeScores(seed: number, B: number, T: number, H: number, Dh: number): { qkv: Float32Array; top: number } {
  const r = rng(seed);
  const D = H * Dh;
  const qkv = new Float32Array(B * T * 3 * D);
  for (let i = 0; i < qkv.length; i++) qkv[i] = Math.floor(i / D) % 3 === 2 ? (2 * r() - 1) / 4 : Math.round(16 * r() - 8) / 8;
  const at = (b: number, t: number, j: number, h: number) => ((b * T + t) * 3 + j) * D + h * Dh;
  const score = (b: number, h: number, t: number, u: number) => {
    let dot = 0;
    for (let d = 0; d < Dh; d++) dot += qkv[at(b, t, 0, h) + d] * qkv[at(b, u, 1, h) + d];
    return dot / Math.sqrt(Dh);
  };
  let top = 0;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      let best = 0;
      for (let t = 0; t < T; t++) for (let u = 0; u < T; u++) if (Math.abs(score(b, h, t, u)) > Math.abs(best)) best = score(b, h, t, u);
      if (best === 0) continue;
      // |8q| stays below 2^14 / Dh: Σ_d |8q|·|8k| < 2^20, every partial sum exact
      const g = Math.sign(best) * Math.min(100 / Math.abs(best), 2 ** 11 / Dh);
      for (let t = 0; t < T; t++) for (let d = 0; d < Dh; d++) qkv[at(b, t, 0, h) + d] = Math.round(8 * g * qkv[at(b, t, 0, h) + d]) / 8;
      for (let t = 0; t < T; t++) for (let u = 0; u < T; u++) top = Math.max(top, score(b, h, t, u));
    }
  return { qkv, top };
}

describe.each(BACKENDS)('attention [%s]', (name, kern) => {
  const fcOpts = fcOptions(name);

  it('attention and attentionBackward equal ref (probs written or not)', () => {
    const heads = fc.constantFrom(1, 2, 3);
    const headDim = fc.oneof(fc.constantFrom(1, 3, 4, 5, 8, 17), fc.integer({ min: 1, max: 20 }));
    const T_ = fc.oneof(fc.constantFrom(1, 3, 5, 17, 129), fc.integer({ min: 1, max: 40 }));
    fc.assert(
      fc.property(fc.constantFrom(1, 2), T_, heads, headDim, seed, special, fc.boolean(), (B, T, H, Dh, s, sp, withProbs) => {
        const D = H * Dh;
        const qkv = values(s, B * T * 3 * D, sp, false).map((v) => 4 * v);
        const out = new Float32Array(B * T * D).fill(NaN);
        const outRef = new Float32Array(B * T * D);
        const probs = new Float32Array(B * H * T * T);
        const probsRef = new Float32Array(B * H * T * T);
        kern.attention(out, withProbs ? probs : null, qkv, B, T, H, Dh);
        refKernels.attention(outRef, probsRef, qkv, B, T, H, Dh);
        expectClose(`attention out B${B} T${T} H${H} Dh${Dh}`, out, outRef, TOL);
        if (withProbs) expectClose('attention probs', probs, probsRef, TOL);
        const dout = values(s + 1, B * T * D, sp, false);
        const init = values(s + 2, B * T * 3 * D, 0);
        const got = init.slice();
        const want = init.slice();
        kern.attentionBackward(got, dout, qkv, probsRef, B, T, H, Dh);
        refKernels.attentionBackward(want, dout, qkv, probsRef, B, T, H, Dh);
        expectClose(`attentionBackward B${B} T${T} H${H} Dh${Dh}`, got, want, TOL);
      }),
      fcOpts,
    );
  });

  it('attention without probs (wasm: the fused forward, R query rows at a time) equals ref with scores up to 1e2, and equals the forward with probs', () => {
    const T_ = fc.oneof(fc.constantFrom(1, 3, 5, 16, 17, 33, 129), fc.integer({ min: 1, max: 40 }));
    let overflowing = 0;
    fc.assert(
      fc.property(fc.constantFrom(1, 2), T_, fc.constantFrom(1, 2, 3), fc.integer({ min: 1, max: 20 }), seed, (B, T, H, Dh, s) => {
        const D = H * Dh;
        const { qkv, top } = largeScores(s, B, T, H, Dh);
        if (top > 88.8) overflowing++; // e^top is not a float32
        const out = new Float32Array(B * T * D).fill(NaN);
        const outP = new Float32Array(B * T * D).fill(NaN);
        const want = new Float32Array(B * T * D);
        kern.attention(out, null, qkv, B, T, H, Dh);
        kern.attention(outP, new Float32Array(B * H * T * T), qkv, B, T, H, Dh);
        refKernels.attention(want, null, qkv, B, T, H, Dh);
        expectClose(`attention (no probs, scores to ${top.toFixed(1)}) B${B} T${T} H${H} Dh${Dh}`, out, want, TOL);
        expectClose(`attention without probs vs with B${B} T${T} H${H} Dh${Dh}`, out, outP, 1e-6);
      }),
      { ...fcOpts, numRuns: 30 },
    );
    expect(overflowing).toBeGreaterThan(20);
  });

  it('attentionBackward matches finite differences', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2), fc.integer({ min: 1, max: 7 }), fc.constantFrom(1, 2), fc.integer({ min: 1, max: 6 }), seed, (B, T, H, Dh, s) => {
        const D = H * Dh;
        const qkv = rand(s, B * T * 3 * D).map((v) => 2 * v);
        const dout = rand(s + 1, B * T * D);
        const probs = new Float32Array(B * H * T * T);
        kern.attention(new Float32Array(B * T * D), probs, qkv, B, T, H, Dh);
        const before = rand(s + 2, B * T * 3 * D);
        const after = before.slice();
        kern.attentionBackward(after, dout, qkv, probs, B, T, H, Dh);
        expectIncrement('fd attention dqkv', after, before, fdGrad([qkv], 0, dout, (p) => attention64(p[0], B, T, H, Dh)), FD_TOL);
      }),
      { ...fcOpts, numRuns: 8 },
    );
  });
});
