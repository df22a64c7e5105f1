/**
 * Timestep embedding (official `TimestepEmbedder`, from GLIDE):
 *   freq_i = exp(-ln(10000) · i / half), i < half = dim/2       (float32, as PyTorch)
 *   t_freq = [cos(t · freq), sin(t · freq)]                    t [N] → [N, dim] (cos half first)
 *   t_emb  = Linear2(silu(Linear1(t_freq)))                    → [N, D]
 * The products t·freq are rounded to float32 as PyTorch forms them.
 */
import type { Kernels } from './kernels.js';
import { siluForward, siluBackward } from './activations.js';

export function timestepFrequencies(out: Float32Array, t: ArrayLike<number>, N: number, dim: number, maxPeriod = 10000): void {
  const half = Math.floor(dim / 2);
  for (let n = 0; n < N; n++) {
    const tn = Math.fround(t[n]);
    for (let i = 0; i < half; i++) {
      // float32 at every step, as torch: (-ln P · i) / half, then exp
      const freq = Math.fround(Math.exp(Math.fround(Math.fround(Math.fround(-Math.log(maxPeriod)) * i) / half)));
      const arg = Math.fround(tn * freq);
      out[n * dim + i] = Math.cos(arg);
      out[n * dim + half + i] = Math.sin(arg);
    }
    if (dim % 2) out[n * dim + dim - 1] = 0;
  }
}

export interface TimestepCache {
  tFreq: Float32Array; // [N, F]
  h: Float32Array; // [N, D] before SiLU
  hAct: Float32Array; // [N, D] after SiLU
}

/** t [N] → t_emb [N, D]; w1 [D, F], b1 [D], w2 [D, D], b2 [D]. */
export function timestepEmbedForward(kern: Kernels, out: Float32Array, t: ArrayLike<number>, w1: Float32Array, b1: Float32Array, w2: Float32Array, b2: Float32Array, N: number, F: number, D: number): TimestepCache {
  const tFreq = new Float32Array(N * F);
  timestepFrequencies(tFreq, t, N, F);
  const h = new Float32Array(N * D);
  kern.linear(h, tFreq, w1, b1, N, F, D);
  const hAct = new Float32Array(N * D);
  siluForward(hAct, h);
  kern.linear(out, hAct, w2, b2, N, D, D);
  return { tFreq, h, hAct };
}

/** Backward (accumulates into the weight gradients; t itself gets none). */
export function timestepEmbedBackward(kern: Kernels, dw1: Float32Array, db1: Float32Array, dw2: Float32Array, db2: Float32Array, dout: Float32Array, cache: TimestepCache, w2: Float32Array, w1: Float32Array, N: number, F: number, D: number): void {
  const dhAct = new Float32Array(N * D);
  kern.linearBackward(dhAct, dw2, db2, dout, cache.hAct, w2, N, D, D); // inverts Linear2
  const dh = new Float32Array(N * D);
  siluBackward(dh, dhAct, cache.h); // inverts SiLU
  kern.linearBackward(null, dw1, db1, dh, cache.tFreq, w1, N, F, D); // inverts Linear1
}
