/**
 * `sample --vae V` and `--preview TAESD`: the pictures of a latent model. With --vae the PNG grid
 * shows the decoded RGB images (the official sample.py: vae.decode(z / 0.18215), then
 * save_image(value_range=(−1, 1))); with --preview, every few steps TAESD decodes the x̂0
 * predictions of the first samples into `<out>.preview.png` (cheap: ~1/100 of the VAE's work),
 * so a long run can be watched.
 */
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import type { DiTConfig } from '../ref/config.js';
import { loadTaesdFiles, loadVaeFile } from './vaeFiles.js';
import { decodeLatents, taesdDecoder, vaeDecoder, type LatentDecoder } from './vaeImages.js';
import { gridPng, type ImageBatch } from '../render/images.js';
import { writeFileAtomic } from '../node/files.js';

export interface VaeSampleOptions {
  vae?: string;
  preview?: string;
  out: string;
}

export interface VaeSampleOutput {
  /** The VAE decoder, when --vae was given. */
  decoder: LatentDecoder | null;
  /** Where the preview goes, when --preview was given. */
  previewFile: string | null;
  /** Call at every sampling step with the x̂0 prediction [N, C, s, s]. */
  onStep(i: number, n: number, predX0: Float32Array, N: number): void;
  /** The decoded images of the final latents (the VAE's when given). */
  decode(latents: Float32Array, N: number): ImageBatch;
}

function checkChannels(d: LatentDecoder, c: DiTConfig, flag: string, path: string): void {
  if (d.latentChannels !== c.in_channels) throw new DitMoeError(`decodes latents of ${d.latentChannels} channels, but the model samples ${c.in_channels}-channel latents (a VAE of another family: SD's has 4, SD3's and FLUX's 16)`, `${flag} ${path}`);
}

export async function vaeSampleOutput(o: VaeSampleOptions, c: DiTConfig, kernels: Kernels): Promise<VaeSampleOutput | null> {
  if (!o.vae && !o.preview) return null;
  const decoder = o.vae ? vaeDecoder((await loadVaeFile(o.vae, kernels)).vae, o.vae) : null;
  if (decoder) checkChannels(decoder, c, '--vae', o.vae!);
  const preview = o.preview ? taesdDecoder(await loadTaesdFiles([o.preview], kernels), o.preview) : null;
  if (preview) checkChannels(preview, c, '--preview', o.preview!);
  if (decoder && !/\.png$/i.test(o.out)) throw new DitMoeError('must end in .png with --vae (the decoded pictures are a PNG grid); a .safetensors keeps the latents, which dit-moe decode turns into pictures', '--out');
  const s = c.input_size;
  const L = c.in_channels;
  const previewFile = preview ? o.out.replace(/(\.[a-z]+)?$/i, '.preview.png') : null;
  return {
    decoder,
    previewFile,
    onStep(i, n, predX0, N) {
      if (!preview) return;
      const every = Math.max(1, Math.round(n / 10));
      if (i % every !== 0 && i !== n - 1) return;
      const shown = Math.min(N, 4);
      const img = decodeLatents(preview, predX0.subarray(0, shown * L * s * s), shown, L, s, s);
      writeFileAtomic(previewFile!, gridPng(img, shown, 1));
    },
    decode(latents, N) {
      if (!decoder) throw new DitMoeError('no --vae given', 'sample');
      return decodeLatents(decoder, latents, N, L, s, s);
    },
  };
}
