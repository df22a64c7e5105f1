/**
 * diffusers' `Encoder` (models/autoencoders/vae.py) with DownEncoderBlock2D levels:
 *   x [N, in, H, W] → conv_in (3×3) → level i: layers_per_block ResNet blocks, then (not on the
 *   last level) Downsample2D: pad right and bottom by one, 3×3 conv with stride 2
 *   → mid block → GroupNorm + SiLU → conv_out (3×3) → [N, 2L, H/f, W/f]   (f = 2^(levels−1))
 * H and W must be multiples of f (as every level halves them exactly).
 */
import type { Kernels } from '../kernels.js';
import { convShape, type Conv2dShape } from './conv2d.js';
import { resnetBlockForward } from './resnetBlock.js';
import { midBlockForward } from './midBlock.js';
import { moveDown, type NamedWeights } from './weights.js';
import { VAE_EPS, type VaeConfig } from './config.js';
import type { SpatialAttentionWeights } from './spatialAttention.js';

/** Sees each stage's output (its values are valid during the call only). */
export type StageHook = (name: string, data: Float32Array, shape: number[]) => void;

/** Diffusers' Downsample2D geometry: padding (0, 1, 0, 1), stride 2, no conv padding. */
export function downsampleShape(N: number, C: number, H: number, W: number): Conv2dShape {
  return { N, C, H, W, O: C, kh: 3, kw: 3, stride: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1 };
}

/** Returns a new tensor of `kern` [N, 2L, H/f, W/f] (moments before quant_conv); everything else is released. */
export function encoderForward(kern: Kernels, x: Float32Array, c: VaeConfig, w: NamedWeights, attn: SpatialAttentionWeights | null, N: number, H: number, W: number, onStage?: StageHook): Float32Array {
  const ch = c.block_out_channels;
  const G = c.norm_num_groups;
  const base = kern.mark();
  let C = ch[0];
  let cur = kern.tensor(N * C * H * W);
  kern.conv2d(cur, x, w.get('encoder.conv_in.weight'), w.get('encoder.conv_in.bias'), convShape(N, c.in_channels, H, W, C, 3));
  onStage?.('enc.conv_in', cur, [N, C, H, W]);
  for (let i = 0; i < ch.length; i++) {
    for (let j = 0; j < c.layers_per_block; j++) {
      const out = kern.tensor(N * ch[i] * H * W);
      resnetBlockForward(kern, out, cur, w, `encoder.down_blocks.${i}.resnets.${j}`, N, C, H, W, G);
      C = ch[i];
      cur = moveDown(kern, base, out);
    }
    if (i < ch.length - 1) {
      const s = downsampleShape(N, C, H, W);
      H = Math.floor((H + 1 - 3) / 2) + 1;
      W = Math.floor((W + 1 - 3) / 2) + 1;
      const out = kern.tensor(N * C * H * W);
      kern.conv2d(out, cur, w.get(`encoder.down_blocks.${i}.downsamplers.0.conv.weight`), w.get(`encoder.down_blocks.${i}.downsamplers.0.conv.bias`), s);
      cur = moveDown(kern, base, out);
    }
    onStage?.(`enc.down${i}`, cur, [N, C, H, W]);
  }
  const mid = kern.tensor(N * C * H * W);
  midBlockForward(kern, mid, cur, w, attn, 'encoder.mid_block', N, C, H, W, G);
  cur = moveDown(kern, base, mid);
  onStage?.('enc.mid', cur, [N, C, H, W]);
  const h = kern.tensor(N * C * H * W);
  kern.groupNorm(h, cur, w.get('encoder.conv_norm_out.weight'), w.get('encoder.conv_norm_out.bias'), N, C, H * W, G, VAE_EPS, true);
  const L2 = 2 * c.latent_channels;
  const out = kern.tensor(N * L2 * H * W);
  kern.conv2d(out, h, w.get('encoder.conv_out.weight'), w.get('encoder.conv_out.bias'), convShape(N, C, H, W, L2, 3));
  return moveDown(kern, base, out);
}
