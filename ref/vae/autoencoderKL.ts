/**
 * diffusers' `AutoencoderKL` in eval (the Stable Diffusion VAE), on any `Kernels`:
 *   encode:  moments = quant_conv(Encoder(x)) [N, 2L, H/f, W/f] = [mean; logvar]
 *            latents = (mean (or a sample) − shift) · scale          (what DiT trains on)
 *   decode:  Decoder(post_quant_conv(z / scale + shift)) → [N, out, H, W], in [−1, 1] before any clamp
 * Images [N, C, H, W] in [−1, 1], H and W multiples of f = 2^(levels − 1) (8 for SD).
 * Weights in diffusers' names (io/vae/names.ts converts the others); `vaeParamSpecs` lists them.
 */
import { DitMoeError } from '../../core/errors.js';
import type { Kernels } from '../kernels.js';
import { convShape } from './conv2d.js';
import { encoderForward, type StageHook } from './encoder.js';
import { decoderForward } from './decoder.js';
import { fuseQkv, type SpatialAttentionWeights } from './spatialAttention.js';
import { NamedWeights } from './weights.js';
import { checkVaeConfig, vaeFactor, type VaeConfig } from './config.js';
import { gaussianMean, gaussianSample, scaleLatents } from './diagonalGaussian.js';
import { vaeParamSpecs } from './params.js';

export class AutoencoderKL {
  readonly weights: NamedWeights;
  private readonly encAttn: SpatialAttentionWeights | null;
  private readonly decAttn: SpatialAttentionWeights | null;

  constructor(
    readonly config: VaeConfig,
    tensors: ReadonlyMap<string, Float32Array>,
    readonly kernels: Kernels,
    readonly where = 'VAE',
  ) {
    checkVaeConfig(config, where);
    this.weights = new NamedWeights(tensors, where);
    for (const s of vaeParamSpecs(config)) {
      const t = this.weights.get(s.name);
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (t.length !== n) throw new DitMoeError(`tensor '${s.name}' has ${t.length} elements, the configuration needs ${n}`, where);
    }
    this.encAttn = config.mid_block_add_attention ? this.attention('encoder.mid_block.attentions.0') : null;
    this.decAttn = config.mid_block_add_attention ? this.attention('decoder.mid_block.attentions.0') : null;
  }

  private attention(pre: string): SpatialAttentionWeights {
    const g = (n: string) => this.weights.get(`${pre}.${n}`);
    return {
      normW: g('group_norm.weight'),
      normB: g('group_norm.bias'),
      qkvW: fuseQkv(g('to_q.weight'), g('to_k.weight'), g('to_v.weight')),
      qkvB: fuseQkv(g('to_q.bias'), g('to_k.bias'), g('to_v.bias')),
      outW: g('to_out.0.weight'),
      outB: g('to_out.0.bias'),
    };
  }

  /** The spatial factor between image and latent (8 for SD). */
  get factor(): number {
    return vaeFactor(this.config);
  }

  private checkInput(what: string, data: Float32Array, N: number, C: number, H: number, W: number): void {
    if (![N, H, W].every((d) => Number.isInteger(d) && d >= 1)) throw new DitMoeError(`bad size N ${N}, H ${H}, W ${W}`, what);
    if (data.length !== N * C * H * W) throw new DitMoeError(`has ${data.length} values, [${N}, ${C}, ${H}, ${W}] needs ${N * C * H * W}`, what);
  }

  /** quant_conv(Encoder(image)): [N, 2L, H/f, W/f], mean then log-variance. */
  encodeMoments(image: Float32Array, N: number, H: number, W: number, onStage?: StageHook): Float32Array {
    const c = this.config;
    const f = this.factor;
    this.checkInput('image', image, N, c.in_channels, H, W);
    if (H % f || W % f) throw new DitMoeError(`size ${W}×${H} is not a multiple of ${f} (the VAE halves it ${Math.log2(f)} times)`, 'image');
    const kern = this.kernels;
    const m = kern.mark();
    try {
      let h = encoderForward(kern, image, c, this.weights, this.encAttn, N, H, W, onStage);
      const L2 = 2 * c.latent_channels;
      const S = (H / f) * (W / f);
      if (c.use_quant_conv) {
        const q = kern.tensor(N * L2 * S);
        kern.conv2d(q, h, this.weights.get('quant_conv.weight'), this.weights.get('quant_conv.bias'), convShape(N, L2, H / f, W / f, L2, 1));
        h = q;
      }
      return h.slice();
    } finally {
      kern.release(m);
    }
  }

  /** Latents for the diffusion model: (mean − shift)·scale, or with `noise` [N, L, h, w] a sample of the posterior. */
  encode(image: Float32Array, N: number, H: number, W: number, noise?: Float32Array): Float32Array {
    const moments = this.encodeMoments(image, N, H, W);
    const L = this.config.latent_channels;
    const S = (H / this.factor) * (W / this.factor);
    if (noise && noise.length !== N * L * S) throw new DitMoeError(`has ${noise.length} values, needs ${N * L * S}`, 'noise');
    const z = noise ? gaussianSample(moments, noise, N, L, S) : gaussianMean(moments, N, L, S);
    return scaleLatents(z, this.config.scaling_factor, this.config.shift_factor ?? 0, false);
  }

  /** Decoder(post_quant_conv(z)) of unscaled latents z [N, L, h, w] → [N, out, h·f, w·f]. */
  decodeUnscaled(z: Float32Array, N: number, h: number, w: number, onStage?: StageHook): Float32Array {
    const c = this.config;
    this.checkInput('latents', z, N, c.latent_channels, h, w);
    const kern = this.kernels;
    const m = kern.mark();
    try {
      let zin = z;
      if (c.use_post_quant_conv) {
        zin = kern.tensor(z.length);
        kern.conv2d(zin, z, this.weights.get('post_quant_conv.weight'), this.weights.get('post_quant_conv.bias'), convShape(N, c.latent_channels, h, w, c.latent_channels, 1));
      }
      return decoderForward(kern, zin, c, this.weights, this.decAttn, N, h, w, onStage).slice();
    } finally {
      kern.release(m);
    }
  }

  /** Images [N, out, h·f, w·f] in [−1, 1] (before any clamp) from the diffusion model's latents [N, L, h, w]. */
  decode(latents: Float32Array, N: number, h: number, w: number, onStage?: StageHook): Float32Array {
    const z = scaleLatents(latents.slice(), this.config.scaling_factor, this.config.shift_factor ?? 0, true);
    return this.decodeUnscaled(z, N, h, w, onStage);
  }
}
