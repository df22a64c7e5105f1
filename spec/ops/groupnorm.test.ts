/**
 * GroupNorm (+ SiLU) (ref/vae/groupnorm.ts, wasm/ops/groupnorm.ts): ref against the formula in
 * float64, then every backend against ref within 1e-5 relative to max(1, max|ref|) (the kernel
 * suites' tolerance; the wasm kernel normalises in float32 and uses a vector exp of ~2 ulp),
 * plus what rounding the group mean to float32 moves the output by (meanRounding below).
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backendsWithThreads } from '../backends.js';
import { rng } from '../random.js';
import { diff } from '../golden.js';
import { groupNormForward } from '../../ref/vae/groupnorm.js';
import { DitMoeError } from '../../core/errors.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);
const TOL = 1e-5;

function values(seed: number, n: number, offset = 0, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => offset + scale * (2 * r() - 1));
}

/**
 * The wasm kernel, like PyTorch's float32 GroupNorm, holds the group mean μ in float32: that
 * rounding (≤ 2⁻²⁴·|μ|) moves every output by up to 2⁻²⁴·|μ|·rstd·|w| (SiLU's slope is < 1.1).
 * Tiny groups far from zero (1–2 values at an offset of −50) make this exceed 1e-5 by itself;
 * ref keeps μ in float64. Returns the largest such shift over the groups, doubled.
 */
function meanRounding(x: Float32Array, w: Float32Array | null, N: number, C: number, S: number, G: number, eps: number): number {
  const cg = C / G;
  let worst = 0;
  for (let n = 0; n < N; n++)
    for (let g = 0; g < G; g++) {
      const base = (n * C + g * cg) * S;
      let mu = 0;
      for (let i = 0; i < cg * S; i++) mu += x[base + i];
      mu /= cg * S;
      let v = 0;
      for (let i = 0; i < cg * S; i++) v += (x[base + i] - mu) ** 2;
      const rstd = 1 / Math.sqrt(v / (cg * S) + eps);
      let wmax = 1;
      if (w) for (let c = g * cg; c < (g + 1) * cg; c++) wmax = Math.max(wmax, Math.abs(w[c]));
      worst = Math.max(worst, 2 ** -24 * Math.abs(mu) * rstd * wmax * 1.1);
    }
  return 2 * worst;
}

function groupNorm64(x: Float32Array, w: Float32Array | null, b: Float32Array | null, N: number, C: number, S: number, G: number, eps: number, silu: boolean): Float64Array {
  const out = new Float64Array(N * C * S);
  const cg = C / G;
  for (let n = 0; n < N; n++)
    for (let g = 0; g < G; g++) {
      const idx: number[] = [];
      for (let c = g * cg; c < (g + 1) * cg; c++) for (let s = 0; s < S; s++) idx.push((n * C + c) * S + s);
      const mu = idx.reduce((a, i) => a + x[i], 0) / idx.length;
      const v = idx.reduce((a, i) => a + (x[i] - mu) ** 2, 0) / idx.length;
      for (const i of idx) {
        const c = Math.floor(i / S) % C;
        const y = ((x[i] - mu) / Math.sqrt(v + eps)) * (w ? w[c] : 1) + (b ? b[c] : 0);
        out[i] = silu ? y / (1 + Math.exp(-y)) : y;
      }
    }
  return out;
}

/** max |got − want| relative to max(1, max|want|) (spec/golden.ts). */
const maxRel = (got: ArrayLike<number>, want: ArrayLike<number>) => diff(got, want).rel;

const cases = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  G: fc.integer({ min: 1, max: 5 }),
  per: fc.integer({ min: 1, max: 4 }),
  S: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.constantFrom(64, 257)),
  affine: fc.boolean(),
  silu: fc.boolean(),
  offset: fc.constantFrom(0, 3, -50),
  eps: fc.constantFrom(1e-6, 1e-5),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

function inputs(r: { N: number; G: number; per: number; S: number; affine: boolean; offset: number; seed: number }) {
  const C = r.G * r.per;
  return { C, x: values(r.seed, r.N * C * r.S, r.offset, 2), w: r.affine ? values(r.seed + 1, C, 1, 0.5) : null, b: r.affine ? values(r.seed + 2, C) : null };
}

describe('groupNorm: ref against the formula', () => {
  it('random groups, sizes, affine or not, SiLU or not, offset data', () => {
    fc.assert(
      fc.property(cases, (r) => {
        const { C, x, w, b } = inputs(r);
        const out = new Float32Array(x.length);
        groupNormForward(out, x, w, b, r.N, C, r.S, r.G, r.eps, r.silu);
        expect(maxRel(out, groupNorm64(x, w, b, r.N, C, r.S, r.G, r.eps, r.silu))).toBeLessThanOrEqual(TOL);
      }),
      { numRuns: 80, seed: 2026 },
    );
  });

  it('channels that do not split into the groups are an error', () => {
    expect(() => groupNormForward(new Float32Array(6), new Float32Array(6), null, null, 1, 3, 2, 2, 1e-6, false)).toThrow(DitMoeError);
  });
});

describe.each(BACKENDS)('groupNorm [%s] against ref', (_name, kern) => {
  it('random cases', () => {
    fc.assert(
      fc.property(cases, (r) => {
        const { C, x, w, b } = inputs(r);
        const want = new Float32Array(x.length);
        groupNormForward(want, x, w, b, r.N, C, r.S, r.G, r.eps, r.silu);
        const got = new Float32Array(x.length).fill(NaN);
        kern.groupNorm(got, x, w, b, r.N, C, r.S, r.G, r.eps, r.silu);
        expect(maxRel(got, want)).toBeLessThanOrEqual(TOL + meanRounding(x, w, r.N, C, r.S, r.G, r.eps));
      }),
      { numRuns: 60, seed: 2026 },
    );
  });

  it("the VAE's shape on the backend's own tensors: 2 images, 32 groups of 4 channels, 16×16", () => {
    const [N, C, S, G] = [2, 128, 256, 32];
    const x = values(5, N * C * S, 0.5, 3);
    const w = values(6, C, 1, 0.3);
    const b = values(7, C);
    const want = new Float32Array(x.length);
    groupNormForward(want, x, w, b, N, C, S, G, 1e-6, true);
    const m = kern.mark();
    const xt = kern.tensor(x.length);
    xt.set(x);
    const got = kern.tensor(x.length);
    kern.groupNorm(got, xt, w, b, N, C, S, G, 1e-6, true);
    expect(maxRel(got, want)).toBeLessThanOrEqual(TOL);
    kern.release(m);
  });
});
