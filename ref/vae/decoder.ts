/**
 * diffusers' `Decoder` (models/autoencoders/vae.py) with UpDecoderBlock2D levels:
 *   z [N, L, h, w] → conv_in (3×3) → mid block → level i over the reversed widths:
 *   layers_per_block + 1 ResNet blocks, then (not on the last level) Upsample2D: nearest ×2,
 *   3×3 conv → GroupNorm + SiLU → conv_out (3×3) → [N, out, h·f, w·f]
 */
import type { Kernels } from '../kernels.js';
import { convShape } from './conv2d.js';
import { resnetBlockForward } from './resnetBlock.js';
import { midBlockForward } from './midBlock.js';
import { upsampleNearest2x } from './upsample.js';
import { moveDown, type NamedWeights } from './weights.js';
import { VAE_EPS, type VaeConfig } from './config.js';
import type { SpatialAttentionWeights } from './spatialAttention.js';
import type { StageHook } from './encoder.js';

/** Returns a new tensor of `kern` [N, out, h·f, w·f]; everything else is released. */
export function decoderForward(kern: Kernels, z: Float32Array, c: VaeConfig, w: NamedWeights, attn: SpatialAttentionWeights | null, N: number, H: number, W: number, onStage?: StageHook): Float32Array {
  const rev = [...c.block_out_channels].reverse();
  const G = c.norm_num_groups;
  const base = kern.mark();
  let C = rev[0];
  let cur = kern.tensor(N * C * H * W);
  kern.conv2d(cur, z, w.get('decoder.conv_in.weight'), w.get('decoder.conv_in.bias'), convShape(N, c.latent_channels, H, W, C, 3));
  onStage?.('dec.conv_in', cur, [N, C, H, W]);
  const mid = kern.tensor(N * C * H * W);
  midBlockForward(kern, mid, cur, w, attn, 'decoder.mid_block', N, C, H, W, G, (a) => onStage?.('dec.mid_attn', a, [N, C, H, W]));
  cur = moveDown(kern, base, mid);
  onStage?.('dec.mid', cur, [N, C, H, W]);
  for (let i = 0; i < rev.length; i++) {
    for (let j = 0; j <= c.layers_per_block; j++) {
      const out = kern.tensor(N * rev[i] * H * W);
      resnetBlockForward(kern, out, cur, w, `decoder.up_blocks.${i}.resnets.${j}`, N, C, H, W, G);
      C = rev[i];
      cur = moveDown(kern, base, out);
    }
    if (i < rev.length - 1) {
      const up = kern.tensor(N * C * 4 * H * W);
      upsampleNearest2x(up, cur, N, C, H, W);
      H *= 2;
      W *= 2;
      const out = kern.tensor(N * C * H * W);
      kern.conv2d(out, up, w.get(`decoder.up_blocks.${i}.upsamplers.0.conv.weight`), w.get(`decoder.up_blocks.${i}.upsamplers.0.conv.bias`), convShape(N, C, H, W, C, 3));
      cur = moveDown(kern, base, out);
    }
    onStage?.(`dec.up${i}`, cur, [N, C, H, W]);
  }
  const h = kern.tensor(N * C * H * W);
  kern.groupNorm(h, cur, w.get('decoder.conv_norm_out.weight'), w.get('decoder.conv_norm_out.bias'), N, C, H * W, G, VAE_EPS, true);
  const out = kern.tensor(N * c.out_channels * H * W);
  kern.conv2d(out, h, w.get('decoder.conv_out.weight'), w.get('decoder.conv_out.bias'), convShape(N, C, H, W, c.out_channels, 3));
  return moveDown(kern, base, out);
}
