/**
 * `dit-moe decode LATENTS --vae V --out grid.png`: the Stable Diffusion VAE (or, `--taesd`, the
 * tiny one) on latents [N, L, h, w] of a safetensors file (`sample --out x.safetensors` writes
 * `samples`; `encode` writes `images`), the diffusion model's scaled latents. PNG: a grid, RGB
 * clamp((x + 1)/2); .safetensors: the images [N, 3, H, W] in [−1, 1], unclamped.
 */
import type { Command } from 'commander';
import { DitMoeError } from '../../core/errors.js';
import { asFloat32, f32, serializeSafetensors } from '../../io/safetensors.js';
import { readSafetensorsFile, writeFileAtomic } from '../../node/files.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { positiveInt } from '../options.js';
import { loadTaesdFiles, loadVaeFile } from '../vaeFiles.js';
import { decodeLatents, taesdDecoder, vaeDecoder, type LatentDecoder } from '../vaeImages.js';
import { gridPng } from '../../render/images.js';
import { progressBar } from '../progress.js';

const NAMES = ['latents', 'samples', 'images'];

export function register(program: Command): void {
  program
    .command('decode')
    .description('decode latents with the Stable Diffusion VAE (or TAESD) into pictures')
    .argument('<latents>', `.safetensors holding latents [N, L, h, w] (tensor ${NAMES.join(', ')} or --tensor)`)
    .option('--vae <path>', 'the VAE: diffusers folder, .safetensors, .pt/.ckpt/.bin (diffusers, legacy or LDM names)')
    .option('--taesd <path>', 'decode with TAESD instead (taesd_decoder.* or a diffusers AutoencoderTiny)')
    .option('--groups <n>', 'GroupNorm groups when the VAE file has no configuration (default 32)', positiveInt('--groups'))
    .option('--tensor <name>', 'the tensor holding the latents')
    .requiredOption('--out <file>', 'grid.png, or .safetensors for the images')
    .option('--cols <n>', 'columns of the PNG grid', positiveInt('--cols'))
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .action(async (file: string, o: { vae?: string; taesd?: string; groups?: number; tensor?: string; out: string; cols?: number; backend: string; threads?: number }) => {
      if (!/\.(png|safetensors)$/i.test(o.out)) throw new DitMoeError('must end in .png or .safetensors', '--out');
      if (!o.vae === !o.taesd) throw new DitMoeError('name one decoder: --vae or --taesd', 'decode');
      const st = readSafetensorsFile(file);
      const name = o.tensor ?? NAMES.find((n) => st.tensors.has(n));
      const t = name !== undefined ? st.tensors.get(name) : undefined;
      if (!t) throw new DitMoeError(o.tensor ? `has no tensor '${o.tensor}'` : `has none of the tensors ${NAMES.join(', ')} (name it with --tensor)`, file);
      if (t.shape.length !== 4 || t.shape.some((d) => d < 1)) throw new DitMoeError(`tensor '${name}' has shape [${t.shape.join(', ')}], expected latents [N, L, h, w]`, file);
      const [N, L, h, w] = t.shape;
      const kernels = await kernelsFor(o.backend, o.threads);
      const dec: LatentDecoder = o.vae ? vaeDecoder((await loadVaeFile(o.vae, kernels, { groups: o.groups })).vae, o.vae) : taesdDecoder(await loadTaesdFiles([o.taesd!], kernels), o.taesd!);
      if (L !== dec.latentChannels) throw new DitMoeError(`tensor '${name}' has ${L} latent channels, the decoder ${dec.where} takes ${dec.latentChannels}`, file);
      const data = asFloat32(t);
      for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new DitMoeError(`tensor '${name}' element ${i} is ${data[i]}; latents must be finite`, file);
      const bar = progressBar(N, `decoding ${N} × ${h}×${w}`);
      let img;
      try {
        img = decodeLatents(dec, data, N, L, h, w, () => bar.tick());
      } finally {
        bar.stop();
      }
      if (/\.png$/i.test(o.out)) writeFileAtomic(o.out, gridPng(img, o.cols, 1));
      else writeFileAtomic(o.out, serializeSafetensors([['images', f32([N, 3, img.H, img.W], img.data)]], { kind: 'vae_decoded', source: file }));
      process.stdout.write(`wrote ${N} images of ${img.W}×${img.H} to ${o.out}\n`);
    });
}
