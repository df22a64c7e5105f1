/**
 * The VAE's mid-block attention (diffusers `Attention` with one head of width C over the H·W
 * positions, residual connection, rescale 1):
 *   h = GroupNorm(x) (no SiLU), viewed as tokens t [N, S, C] (S = H·W)
 *   q, k, v = t·W_qᵀ + b_q, ...     (to_q, to_k, to_v: [C, C]; fused here into one [3C, C] product)
 *   a = softmax(q kᵀ / √C) v        (Kernels.attention with H = 1, Dh = C; the wasm kernel goes over
 *                                    blocks of 16 query rows, so no S×S matrix is formed)
 *   out = x + (a·W_oᵀ + b_o) viewed back as [N, C, H, W]
 */
import type { Kernels } from '../kernels.js';
import { channelsFirst, channelsLast, addInto } from './elementwise.js';
import { VAE_EPS } from './config.js';

export interface SpatialAttentionWeights {
  normW: Float32Array;
  normB: Float32Array;
  /** [3C, C]: to_q, to_k, to_v stacked. */
  qkvW: Float32Array;
  qkvB: Float32Array;
  outW: Float32Array;
  outB: Float32Array;
}

/** Stacks to_q, to_k, to_v into the fused [3C, C] projection. */
export function fuseQkv(q: Float32Array, k: Float32Array, v: Float32Array): Float32Array {
  const out = new Float32Array(q.length * 3);
  out.set(q, 0);
  out.set(k, q.length);
  out.set(v, 2 * q.length);
  return out;
}

export function spatialAttentionForward(kern: Kernels, out: Float32Array, x: Float32Array, w: SpatialAttentionWeights, N: number, C: number, H: number, W: number, G: number): void {
  const S = H * W;
  const n = N * C * S;
  const m = kern.mark();
  const h = kern.tensor(n);
  kern.groupNorm(h, x, w.normW, w.normB, N, C, S, G, VAE_EPS, false);
  const t = kern.tensor(n);
  channelsLast(t, h, N, C, S);
  const qkv = kern.tensor(3 * n);
  kern.linear(qkv, t, w.qkvW, w.qkvB, N * S, C, 3 * C);
  const a = kern.tensor(n);
  kern.attention(a, null, qkv, N, S, 1, C);
  kern.linear(t, a, w.outW, w.outB, N * S, C, C);
  channelsFirst(out, t, N, C, S);
  addInto(out, x, n);
  kern.release(m);
}
