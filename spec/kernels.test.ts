/**
 * The kernel suite, written once and run against every backend (describe.each):
 *  - each kernel equals the reference kernel (`refKernels`) within 1e-5 relative to
 *    max(1, max|ref|), on random shapes that include 1, 3, 5, 17 and 129 and values that
 *    include ±1e4, zeros and denormals (for `ref` itself this is a smoke test);
 *  - each backward kernel equals float64 central finite differences of a float64 forward
 *    written here (independent of ref/) on small shapes, for every backend alike.
 * Backends: ref, wasm (1 thread), and wasm on 2 threads with every product and every
 * attention split between the threads however small (minParallelFlops 0).
 * Attention without probs (on wasm the fused eval forward, R query rows at a time) is also
 * checked on scores up to +1e2 (exp overflows float32 there: only a max-subtracting softmax
 * passes), built exact in float32 so the comparison stays well conditioned (largeScores).
 * Then wasm-only checks: the packed GEMM and both attention head forwards (whole P, and fused
 * with its scratch guarded against overruns) against their in-module naive oracles, exp4,
 * SiLU, the packed-weight cache (no scratch leaks), memory growth, and the errors (bad
 * module, bad sizes, a worker that cannot start, a memory that cannot grow).
 *
 * Tolerances: 1e-5 relative (the per-kernel bound). The float32 sums of a product
 * run over at most 129·3 terms here; their rounding stays below 1e-6 relative in practice.
 * Attention inputs stay within ±4 (plus zeros and denormals): at |q|,|k| ~ 1e4 the logits are
 * ~1e8 and their float32 rounding alone (~6) decides the softmax, so no two float32 orders
 * of summation agree there — an ill-conditioned input, not a kernel property.
 * Finite differences: h = 1e-4 in float64 (truncation ~1e-8); the float32 backward is
 * compared within 1e-4 relative to max(1, max|gradient|): float32 rounding of 2–4 chained
 * products stays near 1e-6, a wrong index or a missing term is of order 1.
 */
import { describe, it, expect, afterAll, vi } from 'vitest';
import fc from 'fast-check';
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import { siluForward, siluBackward } from '../ref/activations.js';
import { DitMoeError } from '../core/errors.js';
import { createWasmKernels, createWasmKernelsSync, kernelsWasmPath } from '../wasm/node.js';
import * as fs from 'node:fs';
import { createWasmKernelsFrom, createSharedMemory } from '../wasm/backend.js';
import { createThreadPool } from '../wasm/threads.js';
import { Arena } from '../wasm/arena.js';
import { webAssembly } from '../wasm/webassembly.js';
import { expectClose } from './golden.js';
import { backendsWithThreads } from './backends.js';
import { rng } from './random.js';

const { list: BACKENDS, wasm, dispose } = await backendsWithThreads();
afterAll(dispose);
const TOL = 1e-5;
const FD_TOL = 1e-4;
const RUNS = 20;

// ---------- inputs ----------

const SPECIAL = [0, 1e4, -1e4, 1e-40, -1e-40, 1.4e-45, 0, -0];

/** n values in [-scale, scale], a share `special` of them ±1e4, zeros or denormals. */
function values(seed: number, n: number, special: number, big = true): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (r() < special) {
      const s = SPECIAL[Math.floor(r() * SPECIAL.length)];
      a[i] = big || Math.abs(s) < 1 ? s : 0;
    } else a[i] = 2 * r() - 1;
  }
  return a;
}

const dim = fc.oneof(fc.constantFrom(1, 3, 5, 17, 129), fc.integer({ min: 1, max: 40 }));
const smallDim = fc.oneof(fc.constantFrom(1, 3, 5, 17), fc.integer({ min: 1, max: 24 }));
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const special = fc.constantFrom(0, 0.05, 0.3);

// ---------- float64 forwards (for the finite differences; independent of ref/) ----------

function linear64(x: Float64Array, w: Float64Array, b: Float64Array | null, M: number, K: number, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

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

function swiglu64(x: Float64Array, wg: Float64Array, wu: Float64Array, wd: Float64Array, M: number, D: number, F: number): Float64Array {
  const g = linear64(x, wg, null, M, D, F);
  const u = linear64(x, wu, null, M, D, F);
  const h = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]);
  return linear64(h, wd, null, M, F, D);
}

/**
 * Central differences of L = Σ dout ⊙ f(params) with respect to params[which], in float64
 * at the float32 values of the inputs.
 */
function fdGrad(params: Float32Array[], which: number, dout: Float32Array, f: (p: Float64Array[]) => Float64Array, h = 1e-4): Float64Array {
  const p64 = params.map((p) => Float64Array.from(p));
  const loss = () => {
    const y = f(p64);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += dout[i] * y[i];
    return s;
  };
  const target = p64[which];
  const g = new Float64Array(target.length);
  for (let i = 0; i < target.length; i++) {
    const v = target[i];
    target[i] = v + h;
    const lp = loss();
    target[i] = v - h;
    const lm = loss();
    target[i] = v;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

/** Backward accumulates: compare (after - before) with the expected increment. */
function expectIncrement(name: string, after: Float32Array, before: Float32Array, expected: ArrayLike<number>, tol: number): void {
  const inc = new Float64Array(after.length);
  for (let i = 0; i < after.length; i++) inc[i] = after[i] - before[i];
  expectClose(name, inc, expected, tol);
}

const rand = (s: number, n: number, sp = 0) => values(s, n, sp, false);

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

describe.each(BACKENDS)('kernels [%s]', (name, kern) => {
  const fcOpts = { numRuns: RUNS, seed: 0x5eed + name.length };

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

  // ---------- backward against float64 finite differences ----------

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

  it('zero-sized dimensions do nothing and throw nothing', () => {
    const out = new Float32Array(4).fill(7);
    kern.linear(out, new Float32Array(0), new Float32Array(6), null, 0, 3, 2);
    expect([...out]).toEqual([7, 7, 7, 7]);
    kern.linear(out, new Float32Array(0), new Float32Array(0), new Float32Array([1, 2]), 2, 0, 2);
    expect([...out]).toEqual([1, 2, 1, 2]);
  });
});

// ---------- wasm only ----------

describe('wasm internals', () => {
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

  it('bad input is a DitMoeError with a one-line message', async () => {
    expect(() => createWasmKernelsFrom(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 9]))).toThrow(DitMoeError);
    expect(() => createWasmKernelsFrom(new Uint8Array([1, 2, 3]))).toThrow(/does not compile/);
    expect(() => wasm.linear(new Float32Array(5), new Float32Array(6), new Float32Array(6), null, 2, 3, 3)).toThrow(/out has 5 elements, needs 6/);
    expect(() => wasm.attention(new Float32Array(4), null, new Float32Array(12), 1, 2, 1, 2.5)).toThrow(DitMoeError);
    // bad experts are named on both paths (one after the other, and side by side on two threads)
    for (const [, k] of BACKENDS.filter(([n]) => n !== 'ref')) {
      const [D, F] = [4, 8];
      const w = { gate: values(1, F * D, 0), up: values(2, F * D, 0), down: values(3, D * F, 0) };
      const good = { out: new Float32Array(6 * D), gate: null, up: null, x: values(4, 6 * D, 0), w, M: 6, F };
      expect(() => k.swigluExperts([good, { ...good, out: new Float32Array(5) }], D)).toThrow(/calls\[1\]\.out has 5 elements, needs 24/);
      expect(() => k.swigluExperts([good, good, { ...good, M: -1 }], D)).toThrow(DitMoeError);
      const back = { dx: new Float32Array(6 * D), dw: { gate: new Float32Array(F * D), up: new Float32Array(F * D), down: new Float32Array(D * F) }, dout: values(5, 6 * D, 0), x: values(4, 6 * D, 0), gate: values(6, 6 * F, 0), up: values(7, 6 * F, 0), w, M: 6, F };
      expect(() => k.swigluExpertsBackward([back, { ...back, up: new Float32Array(3) }], D)).toThrow(/calls\[1\]\.up has 3 elements/);
    }
    expect(() => wasm.gatherRows(new Float32Array(8), new Float32Array(8), Int32Array.of(0, 9), 2, 4)).toThrow(/slots\[1\] = 9 is not a slot of the 2 tokens × 2/);
    expect(() => wasm.scatterAddRowsBackward(new Float32Array(4), new Float32Array(2), new Float32Array(4), new Float32Array(4), Int32Array.of(3), new Float32Array(4), 2, 4)).toThrow(/slots\[0\] = 3/);
    // a worker that cannot instantiate (the one-thread build on a shared memory)
    const plain = new (webAssembly()!.Module)(fs.readFileSync(kernelsWasmPath()));
    await expect(createThreadPool(plain, createSharedMemory(), 1)).rejects.toThrow(/^wasm threads: cannot start 1 worker thread\(s\)/);
    // a memory that cannot grow (its maximum is 2 pages)
    const small = new Arena(new (webAssembly()!.Memory)({ initial: 1, maximum: 2 }), 0);
    small.alloc(1000);
    expect(() => small.alloc(100_000)).toThrow(/^wasm memory: cannot grow to [\d.]+ MiB/);
    await expect(createWasmKernels({ threads: 0 })).rejects.toThrow(/threads must be an integer/);
    let err: unknown = null;
    try {
      wasm.linear(new Float32Array(1), new Float32Array(1), new Float32Array(0), null, 1, 1, 1);
    } catch (caught) {
      err = caught;
    }
    expect(err).toBeInstanceOf(DitMoeError);
    expect((err as Error).message).toBe('wasm.linear: w has 0 elements, needs 1');
  });
});
