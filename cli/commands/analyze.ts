/**
 * `dit-moe analyze --model MODEL --samples N --sampler ddpm|ddim|flow --steps S --cfg G --out DIR`
 * Samples N images while recording every MoE layer's routing, then writes into DIR the
 * heatmaps (class, step, patch position × expert), the expert-load bars, one image's expert
 * map, the samples, stats.json and index.html (analysis/report.ts).
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitMoeError } from '../../ref/errors.js';
import { positiveInt } from '../options.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { loadModelFile, readModelTensors, type ModelOptions } from '../loadModel.js';
import { progressBar } from '../progress.js';
import { parseLabels, type SampleRequest } from './sample.js';
import { runAnalysis, writeAnalysis } from '../../analysis/report.js';


export function register(program: Command): void {
  program
    .command('analyze')
    .description('record expert routing while sampling; write heatmaps, load charts, expert maps, stats.json and index.html')
    .requiredOption('--model <file>', 'model weights (.safetensors with __metadata__.config, or .pt)')
    .requiredOption('--out <dir>', 'output folder (created if missing)')
    .option('--config <json|file>', 'model configuration when the file has none')
    .option('--preset <name>', 'model preset when the file has no configuration')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default for .pt: ema if present)')
    .option('--samples <n>', 'number of images', positiveInt('--samples'), 8)
    .option('--class <c[,c...]>', 'class label(s), cycled over the samples (default 0, 1, 2, ...)')
    .option('--sampler <name>', 'ddpm | ddim | flow (default: flow for rectified-flow checkpoints, else ddpm)')
    .option('--steps <n>', 'sampling steps', positiveInt('--steps'), 50)
    .option('--cfg <scale>', 'guidance scale (1 = none)', parseFloat, 4)
    .option('--guided-channels <n|all>', "channels guided: 'all' (standard) or 3 (the official forward_with_cfg)", 'all')
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .option('--watch <i>', 'the image shown patch by patch in expert_map.png', (v) => parseInt(v, 10), 0)
    .option('--map-steps <n>', 'steps shown in expert_map.png', positiveInt('--map-steps'), 4)
    .option('--raw', 'also write routing.safetensors: every step\'s chosen experts and weights per token (grows with steps × images)')
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .addOption(memoryBudgetOption())
    .action(async (o: { model: string; out: string; samples: number; class?: string; sampler?: string; steps: number; cfg: number; guidedChannels: string; seed: number; watch: number; mapSteps: number; raw?: boolean; backend: string; threads?: number } & ModelOptions) => {
      if (!Number.isFinite(o.cfg)) throw new DitMoeError(`guidance scale '${o.cfg}' is not a finite number`, '--cfg');
      if (!Number.isInteger(o.seed) || o.seed < 0) throw new DitMoeError('must be a non-negative integer', '--seed');
      if (!Number.isInteger(o.watch) || o.watch < 0 || o.watch >= o.samples) throw new DitMoeError(`must be an image index in [0, ${o.samples - 1}]`, '--watch');
      const guidedChannels = o.guidedChannels === 'all' ? 'all' : Number(o.guidedChannels);
      if (guidedChannels !== 'all' && !(Number.isInteger(guidedChannels) && guidedChannels >= 0)) throw new DitMoeError(`'${o.guidedChannels}' is neither 'all' nor a channel count`, '--guided-channels');
      if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory()) throw new DitMoeError('exists and is not a folder', o.out);
      const kernels = await kernelsFor(o.backend, o.threads);
      const model = await loadModelFile(o.model, kernels, o);
      const meta = (await readModelTensors(o.model, o)).metadata;
      const sampler = (o.sampler ?? (meta.objective === 'flow' || !model.config.learn_sigma ? 'flow' : 'ddpm')) as SampleRequest['sampler'];
      if (!['ddpm', 'ddim', 'flow'].includes(sampler)) throw new DitMoeError(`unknown sampler '${sampler}' (ddpm, ddim, flow)`, '--sampler');
      const c = model.config;
      const labels = parseLabels(o.class, o.samples, c.num_classes);
      const bar = progressBar(o.steps, `analyzing ${o.samples} × ${sampler}`);
      const a = runAnalysis(model, { sampler, steps: o.steps, labels, cfg: o.cfg, guidedChannels, seed: o.seed, watchImage: o.watch, mapSteps: o.mapSteps, keepRaw: o.raw, onStep: () => bar.tick() });
      bar.stop();
      const { files } = writeAnalysis(o.out, a, { model: path.basename(o.model), sampler, steps: o.steps, cfg: o.cfg, 'guided channels': String(guidedChannels), seed: o.seed, images: o.samples, classes: Array.from(labels).join(', ') });
      process.stdout.write(`wrote ${files.length} files to ${o.out}: open ${path.join(o.out, 'index.html')}\n`);
    });
}
