/**
 * `dit-moe sample --model MODEL --class 3 --count 16 --sampler ddpm|ddim|flow --steps 50
 *   --cfg 4 --seed 0 --out samples.png [--trajectory traj.png]`
 */
import type { Command } from 'commander';
import { DitMoeError } from '../../ref/errors.js';
import { positiveInt } from '../options.js';
import { dims, presetConfig } from '../../ref/config.js';
import { makeRng } from '../../ref/diffusion/rng.js';
import { createDiffusion } from '../../ref/diffusion/respace.js';
import { sampleDdim, sampleDdpm, sampleRectifiedFlow, type Guidance, type DiffusionModelFn } from '../../ref/diffusion/samplers.js';
import { serializeSafetensors, f32, i64 } from '../../io/safetensors.js';
import { writeFileAtomic } from '../files.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { loadModelWithMetadata, type ModelOptions } from '../loadModel.js';
import { DiTModel } from '../../ref/model.js';
import { initializeWeights } from '../../ref/init.js';
import { gridPng, stripBatch, type ImageBatch } from '../images.js';
import { progressBar } from '../progress.js';

export interface SampleRequest {
  sampler: 'ddpm' | 'ddim' | 'flow';
  steps: number;
  labels: Int32Array;
  cfg: number; // 1 = no guidance
  guidedChannels: number | 'all';
  seed: number;
  eta?: number;
  schedule?: string; // beta schedule name for ddpm/ddim
  onStep?: (i: number, n: number, x: Float32Array, predX0: Float32Array) => void;
  modelFn?: DiffusionModelFn; // used instead of model.forward (e.g. a routing recorder's wrapper)
}

/** Samples `labels.length` images from `model`; start noise and step noise from the seeded RNG. */
export function sampleImages(model: DiTModel, r: SampleRequest): Float32Array {
  const c = model.config;
  const N = r.labels.length;
  const shape = [N, c.in_channels, c.input_size, c.input_size];
  const rng = makeRng(r.seed);
  const z = new Float32Array(N * c.in_channels * c.input_size * c.input_size);
  rng.fillNormal(z);
  const hasNull = dims(c).numLabels > c.num_classes;
  if (r.cfg !== 1 && !hasNull) throw new DitMoeError('guidance needs a null class, and this model has none (class_dropout_prob = 0)', '--cfg');
  const guidance: Guidance | null = r.cfg !== 1 ? { scale: r.cfg, nullClass: c.num_classes, channels: r.guidedChannels } : null;
  const fn = r.modelFn ?? ((x: Float32Array, s: number[], t: Float32Array, y: Int32Array) => model.forward(x, s, t, y));
  if (r.sampler === 'flow') return sampleRectifiedFlow({ model: fn, z, shape, y: r.labels, guidance, steps: r.steps, onStep: r.onStep });
  if ((r.sampler === 'ddpm' || r.sampler === 'ddim') && !c.learn_sigma) throw new DitMoeError('this model has no learned sigma; sample it with --sampler flow (or train with the ddpm objective)', '--sampler');
  const schedule = createDiffusion({ respacing: r.sampler === 'ddim' ? `ddim${r.steps}` : String(r.steps), noiseSchedule: r.schedule });
  if (r.sampler === 'ddim') return sampleDdim({ model: fn, z, shape, y: r.labels, guidance, schedule, eta: r.eta ?? 0, noise: rng, onStep: r.onStep });
  return sampleDdpm({ model: fn, z, shape, y: r.labels, guidance, schedule, noise: rng, onStep: r.onStep });
}

export function parseLabels(text: string | undefined, count: number, numClasses: number): Int32Array {
  if (text === undefined) return Int32Array.from({ length: count }, (_, i) => i % numClasses);
  const parts = text.split(',').map((s) => s.trim());
  const values = parts.map((s) => Number(s));
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) throw new DitMoeError(`class '${parts[i]}' is out of range [0, ${numClasses - 1}]`, '--class');
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
    .option('--init-seed <n>', 'seed of the fresh initialisation (without --model)', (v) => parseInt(v, 10), 0)
    .option('--experts <n>', 'routed experts of the fresh --preset (without --model; default: the preset\'s)', positiveInt('--experts'))
    .option('--weights <which>', 'for a training checkpoint: model or ema (default for .pt: ema if present)')
    .option('--class <c[,c...]>', 'class label(s), cycled over the samples (default 0, 1, 2, ...)')
    .option('--count <n>', 'number of samples', positiveInt('--count'), 16)
    .option('--sampler <name>', 'ddpm | ddim | flow (default: flow for rectified-flow checkpoints, else ddpm)')
    .option('--steps <n>', 'sampling steps', positiveInt('--steps'), 50)
    .option('--cfg <scale>', 'guidance scale (1 = none)', parseFloat, 4)
    .option('--guided-channels <n|all>', "channels guided: 'all' (standard) or 3 (the official forward_with_cfg)", 'all')
    .option('--eta <eta>', 'DDIM eta', parseFloat, 0)
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .option('--out <file>', 'samples.png (a grid) or .safetensors (the raw tensors)', 'samples.png')
    .option('--trajectory <file>', 'also write a PNG strip of the x0 predictions along the way')
    .option('--scale <n>', 'upscale factor of the PNG grid', positiveInt('--scale'))
    .option('--cols <n>', 'columns of the PNG grid (default: about √count)', positiveInt('--cols'))
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .addOption(memoryBudgetOption())
    .action(async (o: { model?: string; initSeed: number; class?: string; count: number; sampler?: string; steps: number; cfg: number; guidedChannels: string; eta: number; seed: number; out: string; trajectory?: string; scale?: number; cols?: number; backend: string; threads?: number; experts?: number } & ModelOptions) => {
      if (!Number.isFinite(o.cfg)) throw new DitMoeError(`guidance scale '${o.cfg}' is not a finite number`, '--cfg');
      if (!Number.isInteger(o.seed) || o.seed < 0) throw new DitMoeError('must be a non-negative integer', '--seed');
      const guidedChannels = o.guidedChannels === 'all' ? 'all' : Number(o.guidedChannels);
      if (guidedChannels !== 'all' && !(Number.isInteger(guidedChannels) && guidedChannels >= 0)) throw new DitMoeError(`'${o.guidedChannels}' is neither 'all' nor a channel count`, '--guided-channels');
      if (!/\.(png|safetensors)$/i.test(o.out)) throw new DitMoeError('must end in .png or .safetensors', '--out');
      if (o.experts !== undefined && o.model) throw new DitMoeError('sets the experts of a fresh --preset; a model file has its own', '--experts');
      const kernels = await kernelsFor(o.backend, o.threads);
      let model: DiTModel;
      let meta: Record<string, string> = {};
      if (o.model) ({ model, metadata: meta } = await loadModelWithMetadata(o.model, kernels, o));
      else if (o.preset) {
        const c = presetConfig(o.preset, o.experts !== undefined ? { num_experts: o.experts } : {});
        model = new DiTModel(c, initializeWeights(c, o.initSeed), kernels);
      }
      else throw new DitMoeError('name a model file (--model) or a preset to initialise (--preset)', 'sample');
      const sampler = (o.sampler ?? (meta.objective === 'flow' || !model.config.learn_sigma ? 'flow' : 'ddpm')) as SampleRequest['sampler'];
      if (!['ddpm', 'ddim', 'flow'].includes(sampler)) throw new DitMoeError(`unknown sampler '${sampler}' (ddpm, ddim, flow)`, '--sampler');
      const c = model.config;
      const labels = parseLabels(o.class, o.count, c.num_classes);
      const frames: ImageBatch[] = [];
      const shown = Math.min(o.count, 8);
      const keepEvery = Math.max(1, Math.round(o.steps / 10));
      const bar = progressBar(o.steps, `sampling ${o.count} × ${sampler}`);
      let x: Float32Array;
      try {
        x = sampleImages(model, {
        sampler,
        steps: o.steps,
        labels,
        cfg: o.cfg,
        guidedChannels,
        seed: o.seed,
        eta: o.eta,
        onStep: (i, n, _x, predX0) => {
          bar.tick();
          if (o.trajectory && (i % keepEvery === 0 || i === n - 1)) frames.push({ data: Float32Array.from(predX0.subarray(0, shown * c.in_channels * c.input_size * c.input_size)), N: shown, C: c.in_channels, H: c.input_size, W: c.input_size });
        },
        });
      } finally {
        bar.stop();
      }
      const batch: ImageBatch = { data: x, N: o.count, C: c.in_channels, H: c.input_size, W: c.input_size };
      const scale = o.scale ?? Math.max(1, Math.round(64 / c.input_size));
      if (/\.png$/i.test(o.out)) writeFileAtomic(o.out, gridPng(batch, o.cols, scale));
      else writeFileAtomic(o.out, serializeSafetensors([['samples', f32([o.count, c.in_channels, c.input_size, c.input_size], x)], ['labels', i64([o.count], labels)]], { sampler, steps: String(o.steps), cfg: String(o.cfg), seed: String(o.seed) }));
      process.stdout.write(`wrote ${o.count} samples to ${o.out}\n`);
      if (o.trajectory && frames.length) {
        writeFileAtomic(o.trajectory, gridPng(stripBatch(frames, shown), frames.length, scale));
        process.stdout.write(`wrote the x0 predictions of ${frames.length} steps to ${o.trajectory} (one row per sample, time left to right)\n`);
      }
    });
}
