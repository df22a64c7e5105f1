/**
 * `dit-moe encode IMAGES... --vae V --out latents.safetensors`: PNG/JPEG pictures to the
 * diffusion model's latents (posterior mean × scaling_factor, or with `--sample` a draw), each
 * picture resized to cover --size and centre-cropped to it (a multiple of the VAE's factor, 8).
 * The output holds `images` [N, L, h, w] and `labels` [N] (--class), __metadata__.kind =
 * vae_latents, so `dit-moe train --data latents.safetensors` trains a latent model on it.
 */
import type { Command } from 'commander';
import { DitMoeError } from '../../core/errors.js';
import { f32, i64, serializeSafetensors } from '../../io/safetensors.js';
import { makeRng } from '../../ref/diffusion/rng.js';
import { writeFileAtomic } from '../../node/files.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { positiveInt } from '../options.js';
import { loadVaeFile } from '../vaeFiles.js';
import { fitImage, readImageFile } from '../imageFiles.js';
import { progressBar } from '../progress.js';

/** "256" or "320x256" (width × height). */
function parseSize(v: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/i.exec(v.trim());
  if (!m) throw new DitMoeError(`'${v}' is neither a size S nor WxH`, '--size');
  const W = Number(m[1]);
  const H = m[2] ? Number(m[2]) : W;
  if (W < 1 || H < 1) throw new DitMoeError(`'${v}' is not a positive size`, '--size');
  return [W, H];
}

export function register(program: Command): void {
  program
    .command('encode')
    .description('encode PNG/JPEG pictures into VAE latents for training a latent model')
    .argument('<images...>', 'PNG or JPEG files')
    .requiredOption('--vae <path>', 'the VAE: diffusers folder, .safetensors, .pt/.ckpt/.bin (diffusers, legacy or LDM names)')
    .requiredOption('--out <file>', 'latents.safetensors')
    .option('--size <S|WxH>', 'picture size fed to the VAE (resize to cover, centre crop); a multiple of 8', '256')
    .option('--class <c[,c...]>', 'class label(s) of the pictures, cycled (default 0)', '0')
    .option('--sample', 'draw from the posterior instead of taking its mean')
    .option('--seed <n>', 'seed of the --sample noise', (v) => parseInt(v, 10), 0)
    .option('--groups <n>', 'GroupNorm groups when the VAE file has no configuration (default 32)', positiveInt('--groups'))
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .action(async (files: string[], o: { vae: string; out: string; size: string; class: string; sample?: boolean; seed: number; groups?: number; backend: string; threads?: number }) => {
      if (!/\.safetensors$/i.test(o.out)) throw new DitMoeError('must end in .safetensors', '--out');
      const [W, H] = parseSize(o.size);
      const classes = o.class.split(',').map((s) => Number(s.trim()));
      if (!classes.every((c) => Number.isInteger(c) && c >= 0)) throw new DitMoeError(`'${o.class}' is not a list of class labels ≥ 0`, '--class');
      if (!Number.isInteger(o.seed) || o.seed < 0) throw new DitMoeError('must be a non-negative integer', '--seed');
      // every picture is decoded before any work, so a bad one stops the command at once
      const pictures = files.map((f) => fitImage(readImageFile(f), W, H));
      const kernels = await kernelsFor(o.backend, o.threads);
      const { vae } = await loadVaeFile(o.vae, kernels, { groups: o.groups });
      const f = vae.factor;
      if (W % f || H % f) throw new DitMoeError(`${W}×${H} is not a multiple of ${f} (the VAE halves the size ${Math.log2(f)} times)`, '--size');
      const L = vae.config.latent_channels;
      const [h, w] = [H / f, W / f];
      const N = pictures.length;
      const out = new Float32Array(N * L * h * w);
      const rng = makeRng(o.seed);
      const bar = progressBar(N, `encoding ${N} × ${W}×${H}`);
      try {
        pictures.forEach((p, n) => {
          const noise = o.sample ? rng.fillNormal(new Float32Array(L * h * w)) : undefined;
          out.set(vae.encode(p.data, 1, H, W, noise), n * L * h * w);
          bar.tick();
        });
      } finally {
        bar.stop();
      }
      const labels = Array.from({ length: N }, (_, i) => classes[i % classes.length]);
      const metadata = { kind: 'vae_latents', vae: o.vae, scaling_factor: String(vae.config.scaling_factor), shift_factor: String(vae.config.shift_factor ?? 0), size: `${W}x${H}`, posterior: o.sample ? `sample (seed ${o.seed})` : 'mean' };
      writeFileAtomic(o.out, serializeSafetensors([['images', f32([N, L, h, w], out)], ['labels', i64([N], labels)]], metadata));
      process.stdout.write(`wrote the latents [${N}, ${L}, ${h}, ${w}] of ${N} pictures to ${o.out}\n`);
    });
}
