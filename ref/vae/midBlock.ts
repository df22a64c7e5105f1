/**
 * diffusers' UNetMidBlock2D of the VAE: ResNet block, attention (when configured), ResNet block,
 * all at C channels:  x [N, C, H, W] → [N, C, H, W]. `onAttention` sees the attention's output.
 */
import type { Kernels } from '../kernels.js';
import { resnetBlockForward } from './resnetBlock.js';
import { spatialAttentionForward, type SpatialAttentionWeights } from './spatialAttention.js';
import type { NamedWeights } from './weights.js';

export function midBlockForward(kern: Kernels, out: Float32Array, x: Float32Array, w: NamedWeights, attn: SpatialAttentionWeights | null, pre: string, N: number, C: number, H: number, W: number, G: number, onAttention?: (a: Float32Array) => void): void {
  const n = N * C * H * W;
  const m = kern.mark();
  const r0 = kern.tensor(n);
  resnetBlockForward(kern, r0, x, w, `${pre}.resnets.0`, N, C, H, W, G);
  let cur = r0;
  if (attn) {
    const a = kern.tensor(n);
    spatialAttentionForward(kern, a, r0, attn, N, C, H, W, G);
    onAttention?.(a);
    cur = a;
  }
  resnetBlockForward(kern, out, cur, w, `${pre}.resnets.1`, N, C, H, W, G);
  kern.release(m);
}
