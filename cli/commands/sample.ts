/**
 * `dit-moe sample --model MODEL --class 3 --count 16 --sampler ddpm|ddim|flow --steps 50
 *   --cfg 4 --seed 0 --out samples.png [--trajectory traj.png]`
 */
import type { Command } from 'commander';
import { DitMoeError } from '../../core/errors.js';
import { positiveInt, onOff, nonNegativeInt, numberArg, refuseIgnored } from '../options.js';
import { presetConfig } from '../../ref/config.js';
import { sampleImages, checkSampler, SAMPLERS, SPACINGS, type SamplerName, type Objective } from '../../ref/diffusion/sampling.js';
import type { DpmSkipType } from '../../ref/diffusion/dpmSolver.js';
import { serializeSafetensors, f32, i64 } from '../../io/safetensors.js';
import { writeFileAtomic } from '../../node/files.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { loadModelWithMetadata, parseConfigFields, type ModelOptions } from '../loadModel.js';
import { DiTModel } from '../../ref/model.js';
import { initializeWeights } from '../../ref/init.js';
import { gridPng, gridSize, stripBatch, type ImageBatch } from '../../render/images.js';
import { progressBar } from '../progress.js';
import { vaeSampleOutput } from '../vaeSample.js';
import { refuseOverwritingInputs } from '../../node/outputs.js';
import { checkModelFits, checkPixels } from '../limits.js';
import { indexStr } from '../../core/tensor.js';

// the one sampling setup (ref/diffusion/sampling.ts); re-exported for the callers of this module
export { sampleImages, type SampleRequest } from '../../ref/diffusion/sampling.js';

/** The list of --class as written: integers ≥ 0 separated by commas (an empty or garbled entry is an error, not class 0). */
export function parseClassList(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  for (const p of parts) if (!/^\d+$/.test(p)) throw new DitMoeError(`'${text}' is not a list of class numbers (entry '${p}')`, '--class');
  return parts.map(Number);
}

export function parseLabels(text: string | undefined, count: number, numClasses: number): Int32Array {
  if (text === undefined) return Int32Array.from({ length: count }, (_, i) => i % numClasses);
  const values = parseClassList(text);
  values.forEach((v) => {
    if (v >= numClasses) throw new DitMoeError(`class ${v} is out of range [0, ${numClasses - 1}]`, '--class');
  });
  return Int32Array.from({ length: count }, (_, i) => values[i % values.length]);
}


export function register(program: Command): void {
  program
    .command('sample')
    .description('sample images from a model (DDPM, DDIM or rectified-flow Euler) with classifier-free guidance')
    .option('--model <file>', 'model weights (.safetensors with __metadata__.config, or .pt); without it, --preset gives a freshly initialised model')
    .option('--config <json|file>', 'model configuration when the file has none')
    .option('--preset <name>', 'model preset when the file has no configuration, or, without --model, the preset to initialise')
    .option('--init-seed <n>', 'seed of the fresh initialisation (without --model)', nonNegativeInt('--init-seed'), 0)
    .option('--experts <n>', 'routed experts of the fresh --preset (without --model; default: the preset\'s)', positiveInt('--experts'))
    .option('--weights <which>', 'for a training checkpoint: model or ema (default: ema when present, as the official find_model)')
    .option('--class <c[,c...]>', 'class label(s), cycled over the samples (default 0, 1, 2, ...)')
    .option('--count <n>', 'number of samples', positiveInt('--count'), 16)
    .option('--sampler <name>', `${SAMPLERS.join(' | ')} (default: flow for rectified-flow checkpoints, else ddpm; docs/solvers.md)`)
    .option('--steps <n>', 'sampling steps (heun: 2·steps − 1 model evaluations; the others: steps)', positiveInt('--steps'), 50)
    .option('--order <n>', 'DPM-Solver order 1–3 (default: from the name: dpm++2m 2, dpm++3m 3, dpm2s 2)', positiveInt('--order'))
    .option('--spacing <name>', `DPM-Solver time steps: ${SPACINGS.join(' | ')} (default time_uniform)`)
    .option('--lower-order-final <on|off>', 'DPM-Solver multistep: lower orders in the last steps when steps < 10 (default on)', onOff('--lower-order-final'))
    .option('--cfg <scale>', 'guidance scale (1 = none)', numberArg('--cfg'), 4)
    .option('--guided-channels <n|all>', "channels guided: 'all' (standard) or 3 (the official forward_with_cfg)", 'all')
    .option('--eta <eta>', 'DDIM eta (ddim only)', numberArg('--eta'), 0)
    .option('--seed <n>', 'random seed', nonNegativeInt('--seed'), 0)
    .option('--out <file>', 'samples.png (a grid) or .safetensors (the raw tensors)', 'samples.png')
    .option('--trajectory <file.png>', 'also write a PNG strip of the x0 predictions along the way')
    .option('--scale <n>', 'upscale factor of the PNG grid', positiveInt('--scale'))
    .option('--cols <n>', 'columns of the PNG grid (default: about √count)', positiveInt('--cols'))
    .option('--vae <path>', 'decode the latents with this Stable Diffusion VAE (diffusers folder, .safetensors, .pt/.ckpt): the PNG shows RGB pictures')
    .option('--preview <taesd>', 'while sampling, decode the x0 predictions with this TAESD decoder into <out>.preview.png')
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .addOption(memoryBudgetOption())
    .option('--allow-nonfinite', 'load weights holding NaN or infinities (to inspect them)')
    .action(async (o: { vae?: string; preview?: string; model?: string; initSeed: number; class?: string; count: number; sampler?: string; steps: number; order?: number; spacing?: string; lowerOrderFinal?: boolean; cfg: number; guidedChannels: string; eta: number; seed: number; out: string; trajectory?: string; scale?: number; cols?: number; backend: string; threads?: number; experts?: number } & ModelOptions, cmd: Command) => {
      // every option checked before any work
      const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
      const guidedChannels = o.guidedChannels === 'all' ? 'all' : /^\d+$/.test(o.guidedChannels.trim()) ? Number(o.guidedChannels) : NaN;
      if (Number.isNaN(guidedChannels)) throw new DitMoeError(`'${o.guidedChannels}' is neither 'all' nor a channel count`, '--guided-channels');
      if (!/\.(png|safetensors)$/i.test(o.out)) throw new DitMoeError('must end in .png or .safetensors', '--out');
      if (o.trajectory !== undefined && !/\.png$/i.test(o.trajectory)) throw new DitMoeError('must end in .png (the trajectory is a picture)', '--trajectory');
      if (o.model) refuseIgnored(given, [['experts', '--experts'], ['initSeed', '--init-seed']], 'with --model (they shape a fresh --preset; a model file has its own weights)');
      else refuseIgnored(given, [['weights', '--weights'], ['allowNonfinite', '--allow-nonfinite']], 'without --model (a fresh --preset has no file)');
      if (o.sampler !== undefined && !(SAMPLERS as readonly string[]).includes(o.sampler)) throw new DitMoeError(`unknown sampler '${o.sampler}' (${SAMPLERS.join(', ')})`, '--sampler');
      if (o.sampler !== undefined && o.sampler !== 'ddim') refuseIgnored(given, [['eta', '--eta']], `with --sampler ${o.sampler} (DDIM only)`);
      if (o.class !== undefined) parseClassList(o.class);
      if (!o.model && !o.preset) throw new DitMoeError('name a model file (--model) or a preset to initialise (--preset)', 'sample');
      refuseOverwritingInputs([['--out', o.out], ['--trajectory', o.trajectory]], [['--model', o.model], ['--config', o.config], ['--vae', o.vae], ['--preview', o.preview]]);
      const kernels = await kernelsFor(o.backend, o.threads);
      let model: DiTModel;
      let meta: Record<string, string> = {};
      if (o.model) ({ model, metadata: meta } = await loadModelWithMetadata(o.model, kernels, o));
      else {
        const c = presetConfig(o.preset!, { ...(o.config !== undefined ? parseConfigFields(o.config) : {}), ...(o.experts !== undefined ? { num_experts: o.experts } : {}) });
        checkModelFits(c, kernels, 1, `--preset ${o.preset}`);
        model = new DiTModel(c, initializeWeights(c, o.initSeed), kernels);
      }
      const sampler = (o.sampler ?? (meta.objective === 'flow' || !model.config.learn_sigma ? 'flow' : 'ddpm')) as SamplerName;
      if (sampler !== 'ddim') refuseIgnored(given, [['eta', '--eta']], `with the ${sampler} sampler (DDIM only)`);
      const objective = meta.objective === 'flow' || meta.objective === 'ddpm' ? (meta.objective as Objective) : undefined;
      const solver = { sampler, steps: o.steps, order: o.order, spacing: o.spacing as DpmSkipType | undefined, lowerOrderFinal: o.lowerOrderFinal };
      checkSampler(solver, objective);
      const c = model.config;
      if (guidedChannels !== 'all' && guidedChannels > c.in_channels) throw new DitMoeError(`${guidedChannels} is more than the model's ${c.in_channels} channels`, '--guided-channels');
      checkModelFits(c, kernels, o.cfg !== 1 ? 2 * o.count : o.count, `--count ${o.count}`, o.model ? 0 : undefined); // a file's weights: placed by the memory plan
      const vaeOut = await vaeSampleOutput({ vae: o.vae, preview: o.preview, out: o.out }, c, kernels);
      if (vaeOut?.previewFile) refuseOverwritingInputs([['--preview output', vaeOut.previewFile]], [['--model', o.model], ['--vae', o.vae], ['--preview', o.preview]]);
      const side = vaeOut?.decoder ? c.input_size * vaeOut.decoder.factor : c.input_size; // the picture's side: a VAE decodes a latent pixel to factor² pixels
      const scale = o.scale ?? Math.max(1, Math.round(64 / side));
      if (/\.png$/i.test(o.out)) {
        const g = gridSize(o.count, side, side, o.cols, scale);
        checkPixels(g.width, g.height, o.scale !== undefined ? `--scale ${o.scale}` : `--count ${o.count}`);
      }
      if (o.trajectory) {
        const g = gridSize(Math.min(o.count, 8) * 11, c.input_size, c.input_size, 11, scale);
        checkPixels(g.width, g.height, `--trajectory with --scale ${scale}`);
      }
      const labels = parseLabels(o.class, o.count, c.num_classes);
      const frames: ImageBatch[] = [];
      const shown = Math.min(o.count, 8);
      const keepEvery = Math.max(1, Math.round(o.steps / 10));
      const bar = progressBar(o.steps, `sampling ${o.count} × ${sampler}`);
      let x: Float32Array;
      try {
        x = sampleImages(model, {
        ...solver,
        objective,
        labels,
        cfg: o.cfg,
        guidedChannels,
        seed: o.seed,
        eta: o.eta,
        onStep: (i, n, _x, predX0) => {
          bar.tick();
          vaeOut?.onStep(i, n, predX0, o.count);
          if (o.trajectory && (i % keepEvery === 0 || i === n - 1)) frames.push({ data: Float32Array.from(predX0.subarray(0, shown * c.in_channels * c.input_size * c.input_size)), N: shown, C: c.in_channels, H: c.input_size, W: c.input_size });
        },
        });
      } finally {
        bar.stop();
      }
      const bad = x.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DitMoeError(`sampling produced ${x[bad]} at element ${indexStr(bad, [o.count, c.in_channels, c.input_size, c.input_size])} of the samples (the weights of ${o.model ?? `--preset ${o.preset}`} or --cfg ${o.cfg} make the sampler diverge); nothing written`, 'sample');
      const batch: ImageBatch = vaeOut?.decoder ? vaeOut.decode(x, o.count) : { data: x, N: o.count, C: c.in_channels, H: c.input_size, W: c.input_size };
      if (/\.png$/i.test(o.out)) writeFileAtomic(o.out, gridPng(batch, o.cols, scale));
      else writeFileAtomic(o.out, serializeSafetensors([['samples', f32([o.count, c.in_channels, c.input_size, c.input_size], x)], ['labels', i64([o.count], labels)]], { sampler, steps: String(o.steps), cfg: String(o.cfg), seed: String(o.seed) }));
      process.stdout.write(`wrote ${o.count} samples to ${o.out}\n`);
      if (o.trajectory && frames.length) {
        writeFileAtomic(o.trajectory, gridPng(stripBatch(frames, shown), frames.length, scale));
        process.stdout.write(`wrote the x0 predictions of ${frames.length} steps to ${o.trajectory} (one row per sample, time left to right)\n`);
      }
    });
}
