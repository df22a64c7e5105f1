/**
 * The VAE's smaller operators against their formulas (ref/vae/): nearest ×2 upsampling, the
 * mid-block spatial attention (GroupNorm, one head over H·W positions, residual) on every backend
 * against a float64 loop, the diagonal Gaussian (mean, sample, logvar clamped to [−30, 20]),
 * latent scaling, and `moveDown`. Tolerance 1e-5 relative to max(1, max|expected|) (float32 sums
 * of at most a few hundred terms against float64).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backendsWithThreads } from './backends.js';
import { rng } from './random.js';
import { diff } from './golden.js';
import { upsampleNearest2x } from '../ref/vae/upsample.js';
import { spatialAttentionForward, fuseQkv } from '../ref/vae/spatialAttention.js';
import { gaussianMean, gaussianSample, scaleLatents } from '../ref/vae/diagonalGaussian.js';
import { moveDown } from '../ref/vae/weights.js';
import { relu, tanhClamp } from '../ref/vae/elementwise.js';
import { refKernels } from '../ref/refKernels.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);
const TOL = 1e-5;

const values = (seed: number, n: number, scale = 1) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => scale * (2 * r() - 1));
};

/** max |got − want| relative to max(1, max|want|) (spec/golden.ts). */
const maxRel = (got: ArrayLike<number>, want: ArrayLike<number>) => diff(got, want).rel;

describe('upsampleNearest2x', () => {
  it('out[n,c,y,x] = x[n,c,⌊y/2⌋,⌊x/2⌋] on a non-square image', () => {
    const [N, C, H, W] = [2, 3, 3, 5];
    const x = values(1, N * C * H * W);
    const out = new Float32Array(N * C * 4 * H * W).fill(NaN);
    upsampleNearest2x(out, x, N, C, H, W);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let y = 0; y < 2 * H; y++) for (let xx = 0; xx < 2 * W; xx++) expect(out[((n * C + c) * 2 * H + y) * 2 * W + xx]).toBe(x[((n * C + c) * H + (y >> 1)) * W + (xx >> 1)]);
  });
});

/** GroupNorm (no affine scale 1) then softmax(q kᵀ/√C) v, projection and residual, all in float64. */
function attention64(x: Float32Array, w: ReturnType<typeof attnWeights>, N: number, C: number, S: number, G: number): Float64Array {
  const out = new Float64Array(x.length);
  const cg = C / G;
  for (let n = 0; n < N; n++) {
    const h = new Float64Array(C * S);
    for (let g = 0; g < G; g++) {
      let mu = 0;
      let v = 0;
      for (let c = g * cg; c < (g + 1) * cg; c++) for (let s = 0; s < S; s++) mu += x[(n * C + c) * S + s] / (cg * S);
      for (let c = g * cg; c < (g + 1) * cg; c++) for (let s = 0; s < S; s++) v += (x[(n * C + c) * S + s] - mu) ** 2 / (cg * S);
      for (let c = g * cg; c < (g + 1) * cg; c++) for (let s = 0; s < S; s++) h[c * S + s] = ((x[(n * C + c) * S + s] - mu) / Math.sqrt(v + 1e-6)) * w.normW[c] + w.normB[c];
    }
    const proj = (W: Float32Array, b: Float32Array, s: number, o: number) => {
      let a = b[o];
      for (let c = 0; c < C; c++) a += W[o * C + c] * h[c * S + s];
      return a;
    };
    const q = Array.from({ length: S }, (_, s) => Array.from({ length: C }, (_, o) => proj(w.q, w.qb, s, o)));
    const k = Array.from({ length: S }, (_, s) => Array.from({ length: C }, (_, o) => proj(w.k, w.kb, s, o)));
    const v = Array.from({ length: S }, (_, s) => Array.from({ length: C }, (_, o) => proj(w.v, w.vb, s, o)));
    for (let t = 0; t < S; t++) {
      const sc = k.map((kk) => kk.reduce((a, kv, c) => a + kv * q[t][c], 0) / Math.sqrt(C));
      const mx = Math.max(...sc);
      const e = sc.map((z) => Math.exp(z - mx));
      const z = e.reduce((a, b) => a + b, 0);
      const a = Array.from({ length: C }, (_, c) => e.reduce((acc, p, s) => acc + (p / z) * v[s][c], 0));
      for (let o = 0; o < C; o++) {
        let y = w.ob[o];
        for (let c = 0; c < C; c++) y += w.o[o * C + c] * a[c];
        out[(n * C + o) * S + t] = x[(n * C + o) * S + t] + y;
      }
    }
  }
  return out;
}

function attnWeights(C: number) {
  return { normW: values(2, C, 1).map((v) => 1 + 0.3 * v), normB: values(3, C, 0.2), q: values(4, C * C, 0.5), k: values(5, C * C, 0.5), v: values(6, C * C, 0.5), o: values(7, C * C, 0.5), qb: values(8, C, 0.1), kb: values(9, C, 0.1), vb: values(10, C, 0.1), ob: values(11, C, 0.1) };
}

describe.each(BACKENDS)('spatialAttention [%s]', (_name, kern) => {
  it('against float64, 2 images of 8 channels in 4 groups over 5×7 positions', () => {
    const [N, C, H, W, G] = [2, 8, 5, 7, 4];
    const w = attnWeights(C);
    const x = values(12, N * C * H * W, 2);
    const out = new Float32Array(x.length);
    spatialAttentionForward(kern, out, x, { normW: w.normW, normB: w.normB, qkvW: fuseQkv(w.q, w.k, w.v), qkvB: fuseQkv(w.qb, w.kb, w.vb), outW: w.o, outB: w.ob }, N, C, H, W, G);
    expect(maxRel(out, attention64(x, w, N, C, H * W, G))).toBeLessThanOrEqual(TOL);
  });
});

describe('diagonal Gaussian and latent scaling', () => {
  it('mean is the first L channels; a sample is mean + exp(½·clamp(logvar, −30, 20))·noise', () => {
    const [N, L, S] = [2, 3, 4];
    const m = values(13, N * 2 * L * S, 3);
    m[L * S] = 45; // logvar above 20: clamped
    m[L * S + 1] = -80; // below −30: clamped
    const noise = values(14, N * L * S);
    const mean = gaussianMean(m, N, L, S);
    const smp = gaussianSample(m, noise, N, L, S);
    for (let n = 0; n < N; n++)
      for (let i = 0; i < L * S; i++) {
        const mu = m[n * 2 * L * S + i];
        const lv = Math.min(20, Math.max(-30, m[n * 2 * L * S + L * S + i]));
        expect(mean[n * L * S + i]).toBe(mu);
        expect(Math.abs(smp[n * L * S + i] - (mu + Math.exp(0.5 * lv) * noise[n * L * S + i]))).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(mu + Math.exp(0.5 * lv) * noise[n * L * S + i])));
      }
  });

  it('scaling by (z − shift)·scale and back', () => {
    const z = values(15, 10);
    const s = scaleLatents(z.slice(), 0.3611, 0.1159, false);
    expect(s[3]).toBeCloseTo((z[3] - 0.1159) * 0.3611, 6);
    expect(maxRel(scaleLatents(s, 0.3611, 0.1159, true), z)).toBeLessThan(1e-6);
  });
});

describe('TAESD elementwise and the activation chain', () => {
  it('relu keeps NaN, tanh clamp is tanh(x/3)·3', () => {
    const a = Float32Array.from([-2, 0, 3, NaN]);
    relu(a);
    expect(Array.from(a)).toEqual([0, 0, 3, NaN]);
    const t = new Float32Array(1);
    tanhClamp(t, Float32Array.from([6]));
    expect(t[0]).toBeCloseTo(Math.tanh(2) * 3, 6);
  });

  it('moveDown keeps the values and frees everything after the mark', () => {
    for (const [, kern] of [['ref', refKernels], ...BACKENDS] as const) {
      const m = kern.mark();
      const a = kern.tensor(5);
      a.set([1, 2, 3, 4, 5]);
      const b = kern.tensor(3);
      b.set([7, 8, 9]);
      const c = moveDown(kern, m, b);
      expect(Array.from(c)).toEqual([7, 8, 9]);
      // what is live afterwards is exactly one 3-element tensor past the mark (the backend decides what a mark counts)
      const after = kern.mark();
      kern.release(m);
      kern.tensor(3);
      expect(after).toBe(kern.mark());
      kern.release(m);
    }
  });
});

describe.each(BACKENDS)('a VAE of another size on a non-square picture [%s]', (name, kern) => {
  it('three levels of [8, 16, 24], 2 layers per block, 4 groups: wasm equals ref on a 40×24 picture and a 5×3 latent', async () => {
    const { AutoencoderKL } = await import('../ref/vae/autoencoderKL.js');
    const { vaeParamSpecs } = await import('../ref/vae/params.js');
    const { DEFAULT_VAE_CONFIG } = await import('../ref/vae/config.js');
    const c = { ...DEFAULT_VAE_CONFIG, block_out_channels: [8, 16, 24], layers_per_block: 2, norm_num_groups: 4 };
    const w = new Map(vaeParamSpecs(c).map((s, i) => [s.name, values(100 + i, s.shape.reduce((a, b) => a * b, 1), s.shape.length > 1 ? 0.4 : 1)]));
    const ref = new AutoencoderKL(c, w, refKernels);
    const vae = new AutoencoderKL(c, w, kern);
    const img = values(99, 2 * 3 * 24 * 40);
    const m = vae.encodeMoments(img, 2, 24, 40);
    expect(m.length).toBe(2 * 8 * 6 * 10);
    if (name !== 'ref') expect(maxRel(m, ref.encodeMoments(img, 2, 24, 40))).toBeLessThanOrEqual(TOL);
    const z = values(98, 4 * 3 * 5);
    const d = vae.decode(z, 1, 3, 5);
    expect(d.length).toBe(3 * 12 * 20);
    if (name !== 'ref') expect(maxRel(d, ref.decode(z, 1, 3, 5))).toBeLessThanOrEqual(TOL);
    expect(() => vae.encodeMoments(values(1, 3 * 18 * 20), 1, 18, 20)).toThrow(/multiple of 4/);
  });
});
