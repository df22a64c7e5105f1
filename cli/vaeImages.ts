/**
 * Latents to pictures for the commands (`sample --vae/--preview`, `decode`): one image at a time
 * through the VAE (or TAESD), so memory stays at one image's activations; RGB grids as
 * `save_image(x, value_range=(−1, 1))`: clamp((x + 1)/2) · 255.
 */
import { DitMoeError } from '../core/errors.js';
import type { AutoencoderKL } from '../ref/vae/autoencoderKL.js';
import type { Taesd } from '../ref/vae/taesd.js';

/** Something that turns the diffusion model's latents [1, L, h, w] into images [1, 3, fh, fw] in [−1, 1]. */
export interface LatentDecoder {
  latentChannels: number;
  factor: number;
  decodeOne(latent: Float32Array, h: number, w: number): Float32Array;
  /** What to name in errors. */
  where: string;
}

export function vaeDecoder(vae: AutoencoderKL, where: string): LatentDecoder {
  return { latentChannels: vae.config.latent_channels, factor: vae.factor, where, decodeOne: (z, h, w) => vae.decode(z, 1, h, w) };
}

/** TAESD gives [0, 1]; mapped to [−1, 1] like the VAE's output. */
export function taesdDecoder(t: Taesd, where: string): LatentDecoder {
  if (!t.decoder) throw new DitMoeError('holds no TAESD decoder', where);
  return {
    latentChannels: t.decoder.latentChannels,
    factor: 8,
    where,
    decodeOne: (z, h, w) => t.decode(z, 1, h, w).map((v) => 2 * v - 1),
  };
}

/** Decodes N latents [N, L, h, w] one by one; `onImage` after each (a progress bar). */
export function decodeLatents(d: LatentDecoder, latents: Float32Array, N: number, L: number, h: number, w: number, onImage?: () => void): { data: Float32Array; N: number; C: number; H: number; W: number } {
  if (L !== d.latentChannels) throw new DitMoeError(`decodes latents of ${d.latentChannels} channels, these have ${L}`, d.where);
  const per = L * h * w;
  const H = h * d.factor;
  const W = w * d.factor;
  const out = new Float32Array(N * 3 * H * W);
  for (let n = 0; n < N; n++) {
    out.set(d.decodeOne(latents.subarray(n * per, (n + 1) * per), h, w), n * 3 * H * W);
    onImage?.();
  }
  return { data: out, N, C: 3, H, W };
}
