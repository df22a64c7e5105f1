/**
 * Property tests (fast-check) for invariants that hold for any input, run on every backend.
 * Random sizes include ones that are not multiples of 4 (1, 3, 5, 17 ...).
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { backends } from './backends.js';
import { routerForward, topK } from '../ref/router.js';
import { balanceLossForward } from '../ref/balanceLoss.js';
import { softmaxForward } from '../ref/softmax.js';
import { patchify, unpatchify, patchEmbedForward } from '../ref/patchEmbed.js';
import { refKernels } from '../ref/refKernels.js';
import { blockForward, blockWeights } from '../ref/block.js';
import { ParamStore, paramSpecs } from '../ref/params.js';
import { validateConfig } from '../ref/config.js';
import { parseSafetensors, serializeSafetensors, type StTensor } from '../io/safetensors.js';

const seed = 20261126;
const runs = { seed, numRuns: 40 };
const size = fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 17);
const floats = (n: number, max = 3) => fc.float32Array({ minLength: n, maxLength: n, min: Math.fround(-max), max: Math.fround(max), noNaN: true, noDefaultInfinity: true });

function rand(n: number, s: number, scale = 1): Float32Array {
  // a small LCG for bulk weights; the property inputs come from fast-check
  const out = new Float32Array(n);
  let x = s >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = ((x / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

describe('softmax (shared by router and attention)', () => {
  it('rows sum to 1, entries in [0, 1], and survive ±1e4 logits', () => {
    fc.assert(
      fc.property(size, size, fc.integer({ min: 0, max: 1000 }), (M, N, s) => {
        const x = rand(M * N, s, 1e4);
        const y = new Float32Array(M * N);
        softmaxForward(y, x, M, N);
        for (let m = 0; m < M; m++) {
          let sum = 0;
          for (let i = 0; i < N; i++) {
            const v = y[m * N + i];
            expect(v >= 0 && v <= 1).toBe(true);
            sum += v;
          }
          expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        }
      }),
      runs,
    );
  });
});

describe.each(backends())('operator properties [%s]', (_n, kern) => {
  it('router: weights in [0, 1]; top-k indices distinct, sorted, and really the k largest scores', () => {
    fc.assert(
      fc.property(size, size, fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (M, D, E, kk, s) => {
        const k = Math.min(kk, E);
        const x = rand(M * D, s);
        const w = rand(E * D, s + 1);
        const r = routerForward(kern, x, w, M, D, E, k, false);
        for (let m = 0; m < M; m++) {
          const idx = Array.from(r.topkIdx.subarray(m * k, (m + 1) * k));
          expect(new Set(idx).size).toBe(k);
          expect([...idx].sort((a, b) => a - b)).toEqual(idx);
          const chosenMin = Math.min(...idx.map((e) => r.scores[m * E + e]));
          for (let e = 0; e < E; e++) if (!idx.includes(e)) expect(r.scores[m * E + e]).toBeLessThanOrEqual(chosenMin);
          for (let j = 0; j < k; j++) {
            const v = r.topkWeight[m * k + j];
            expect(v >= 0 && v <= 1).toBe(true);
            expect(v).toBe(r.scores[m * E + idx[j]]);
          }
        }
      }),
      runs,
    );
  });

  it('LayerNorm: every row has mean 0 and variance 1 (up to eps)', () => {
    fc.assert(
      fc.property(size, fc.integer({ min: 2, max: 40 }), fc.integer({ min: 0, max: 1e6 }), (M, D, s) => {
        const x = rand(M * D, s, 10);
        const y = new Float32Array(M * D);
        kern.layerNorm(y, new Float32Array(M), new Float32Array(M), x, null, null, M, D, 1e-6);
        for (let m = 0; m < M; m++) {
          let mu = 0;
          let v = 0;
          for (let i = 0; i < D; i++) mu += y[m * D + i] / D;
          for (let i = 0; i < D; i++) v += (y[m * D + i] - mu) ** 2 / D;
          expect(Math.abs(mu)).toBeLessThan(1e-5);
          expect(Math.abs(v - 1)).toBeLessThan(1e-3); // eps 1e-6 against variances ≥ ~1e-2
        }
      }),
      runs,
    );
  });

  it('attention is equivariant to permuting tokens (no position embedding inside)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1e6 }), (B, T, H, Dh, s) => {
        const D = H * Dh;
        const qkv = rand(B * T * 3 * D, s);
        const perm = Array.from({ length: T }, (_, i) => (T - 1 - i + s) % T); // reversed and rotated
        const qkvP = new Float32Array(qkv.length);
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) qkvP.set(qkv.subarray((b * T + perm[t]) * 3 * D, (b * T + perm[t] + 1) * 3 * D), (b * T + t) * 3 * D);
        const out = new Float32Array(B * T * D);
        const outP = new Float32Array(B * T * D);
        kern.attention(out, null, qkv, B, T, H, Dh);
        kern.attention(outP, null, qkvP, B, T, H, Dh);
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++)
            for (let d = 0; d < D; d++) expect(Math.abs(outP[(b * T + t) * D + d] - out[(b * T + perm[t]) * D + d])).toBeLessThan(1e-5);
      }),
      runs,
    );
  });

  it('an adaLN-Zero block with zeroed modulation is the identity', () => {
    const c = validateConfig({ input_size: 4, patch_size: 2, in_channels: 3, hidden_size: 12, depth: 1, num_heads: 3, mlp_ratio: 2, num_classes: 5, num_experts: 3, num_experts_per_tok: 2 });
    const p = new ParamStore(paramSpecs(c), rand(new ParamStore(paramSpecs(c)).data.length, 7));
    p.get('blocks.0.adaLN_modulation.1.weight').fill(0);
    p.get('blocks.0.adaLN_modulation.1.bias').fill(0);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1e6 }), (B, s) => {
        const T = 4;
        const x = rand(B * T * 12, s);
        const out = new Float32Array(x.length);
        blockForward(kern, out, x, rand(B * 12, s + 3), blockWeights(p, 0, c), c, B, T, false);
        expect(Array.from(out)).toEqual(Array.from(x));
      }),
      runs,
    );
  });
});

describe('balance loss', () => {
  it('equals alpha when every expert gets the same share of slots and the same mean score', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.double({ min: 0.001, max: 1, noNaN: true }), (E, k0, reps, alpha) => {
        const k = Math.min(k0, E);
        // T tokens cycle through the experts so each expert gets T·k/E slots; uniform scores
        const T = E * reps;
        const idx = new Int32Array(T * k);
        for (let t = 0; t < T; t++) for (let j = 0; j < k; j++) idx[t * k + j] = (t + j) % E;
        const scores = new Float32Array(T * E).fill(1 / E);
        expect(balanceLossForward(scores, idx, 1, T, E, k, alpha, false)).toBeCloseTo(alpha, 6);
        expect(balanceLossForward(scores, idx, 1, T, E, k, alpha, true)).toBeCloseTo(alpha, 6);
      }),
      runs,
    );
  });

  it('does not change when tokens are permuted (batch-pooled form)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 1e6 }), (E, T, s) => {
        const k = Math.min(2, E);
        const scores = new Float32Array(T * E);
        softmaxForward(scores, rand(T * E, s, 3), T, E);
        const idx = new Int32Array(T * k);
        for (let t = 0; t < T; t++) topK(scores, t * E, E, k, idx, t * k);
        const perm = Array.from({ length: T }, (_, i) => (i * 5 + 3) % T);
        if (new Set(perm).size !== T) return; // 5 and T not coprime: skip
        const sP = new Float32Array(T * E);
        const iP = new Int32Array(T * k);
        for (let t = 0; t < T; t++) {
          sP.set(scores.subarray(perm[t] * E, (perm[t] + 1) * E), t * E);
          iP.set(idx.subarray(perm[t] * k, (perm[t] + 1) * k), t * k);
        }
        const a = balanceLossForward(scores, idx, 1, T, E, k, 0.01, false);
        const b = balanceLossForward(sP, iP, 1, T, E, k, 0.01, false);
        expect(Math.abs(a - b)).toBeLessThan(1e-9);
      }),
      runs,
    );
  });
});

describe('patches and files', () => {
  it('unpatchify(patchify(x)) is the identity, in both feature orders', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom('cij' as const, 'ijc' as const), fc.integer({ min: 0, max: 1e6 }), (N, C, p, g, order, s) => {
        const H = p * g;
        const x = rand(N * C * H * H, s);
        const tokens = new Float32Array(x.length);
        patchify(tokens, x, N, C, H, H, p, order);
        const back = new Float32Array(x.length);
        unpatchify(back, tokens, N, C, H, H, p, order);
        expect(Array.from(back)).toEqual(Array.from(x));
      }),
      runs,
    );
  });

  it('the patch embedding equals a stride-p Conv2d written out directly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1e6 }), (N, C, p, g, D, s) => {
        const H = p * g;
        const x = rand(N * C * H * H, s);
        const w = rand(D * C * p * p, s + 1); // [D, C, p, p] as nn.Conv2d stores it
        const b = rand(D, s + 2);
        const out = new Float32Array(N * g * g * D);
        patchEmbedForward(refKernels, out, x, w, b, N, C, H, H, p, D);
        for (let n = 0; n < N; n++)
          for (let r = 0; r < g; r++)
            for (let q = 0; q < g; q++)
              for (let d = 0; d < D; d++) {
                let acc = b[d];
                for (let c = 0; c < C; c++)
                  for (let i = 0; i < p; i++)
                    for (let j = 0; j < p; j++) acc += w[((d * C + c) * p + i) * p + j] * x[((n * C + c) * H + r * p + i) * H + q * p + j];
                expect(Math.abs(out[((n * g + r) * g + q) * D + d] - acc)).toBeLessThan(1e-5);
              }
      }),
      runs,
    );
  });

  it('safetensors: save then load gives the same tensors and metadata', () => {
    const dtypes = ['F32', 'F64', 'I64', 'I32', 'F16', 'BF16'] as const;
    fc.assert(
      fc.property(
        fc.array(fc.record({ dtype: fc.constantFrom(...dtypes), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }), seed: fc.integer({ min: 0, max: 1e6 }) }), { maxLength: 5 }),
        fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), fc.string({ maxLength: 12 }), { maxKeys: 3 }),
        (specs, metadata) => {
          const entries: [string, StTensor][] = specs.map((sp, i) => {
            const n = sp.shape.reduce((a, b) => a * b, 1);
            const v = rand(n, sp.seed, 100);
            const data = sp.dtype === 'F64' ? Float64Array.from(v) : sp.dtype === 'I64' ? BigInt64Array.from(v, (q) => BigInt(Math.round(q))) : sp.dtype === 'I32' ? Int32Array.from(v, Math.round) : sp.dtype === 'F32' ? v : v.map((q) => Math.round(q)); // F16/BF16: integers ≤ 100 are exact
            return [`t${i}`, { dtype: sp.dtype, shape: sp.shape, data }];
          });
          const back = parseSafetensors(serializeSafetensors(entries, metadata));
          expect(back.metadata).toEqual(Object.keys(metadata).length ? metadata : {});
          for (const [name, t] of entries) {
            const b = back.tensors.get(name)!;
            expect(b.dtype).toBe(t.dtype);
            expect(b.shape).toEqual(t.shape);
            expect(Array.from(b.data as ArrayLike<number | bigint>, Number)).toEqual(Array.from(t.data as ArrayLike<number | bigint>, Number));
          }
        },
      ),
      runs,
    );
  });
});
