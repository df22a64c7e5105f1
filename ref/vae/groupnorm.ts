/**
 * GroupNorm, as `nn.GroupNorm(G, C, eps, affine)`, optionally followed by SiLU (every GroupNorm
 * of the VAE but the attention's is followed by one, so the pair is one kernel):
 *   x [N, C, S] (S = H·W), the C channels in G groups of C/G
 *   μ, σ² = mean and biased variance of x[n, group g] over its (C/G)·S values
 *   y[n,c,s] = (x[n,c,s] − μ) / √(σ² + eps) · w[c] + b[c]     (w, b null: no affine)
 *   out = silu ? y · σ(y) : y
 * Sums and the centring in f64 (as ref/layernorm.ts).
 */
import { DitMoeError } from '../../core/errors.js';
import { silu as siluOf } from '../activations.js';

export function groupNormForward(out: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, N: number, C: number, S: number, G: number, eps: number, silu: boolean): void {
  if (!(Number.isInteger(G) && G >= 1 && C % G === 0)) throw new DitMoeError(`${C} channels do not split into ${G} groups`, 'groupNorm');
  const cg = C / G;
  const len = cg * S;
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const base = (n * C + g * cg) * S;
      let sum = 0;
      for (let i = 0; i < len; i++) sum += x[base + i];
      const mu = sum / len;
      let v = 0;
      for (let i = 0; i < len; i++) {
        const d = x[base + i] - mu;
        v += d * d;
      }
      const r = 1 / Math.sqrt(v / len + eps);
      for (let cc = 0; cc < cg; cc++) {
        const c = g * cg + cc;
        const sc = w ? w[c] : 1;
        const sh = b ? b[c] : 0;
        const o = base + cc * S;
        for (let s = 0; s < S; s++) {
          const y = Math.fround((x[o + s] - mu) * r * sc + sh);
          out[o + s] = silu ? siluOf(y) : y;
        }
      }
    }
  }
}
