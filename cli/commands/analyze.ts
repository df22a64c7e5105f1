/**
 * `dit-moe analyze --model MODEL --samples N --sampler ddpm|ddim|flow --steps S --cfg G --out DIR`
 * Samples N images while recording every MoE layer's routing, then writes into DIR the
 * heatmaps (class, step, patch position × expert), the expert-load bars, one image's expert
 * map, the samples, stats.json and index.html (analysis/report.ts).
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { DitMoeError } from '../../core/errors.js';
import { positiveInt, nonNegativeInt, numberArg } from '../options.js';
import { refuseOverwritingInputs, checkOutputFolder } from '../../node/outputs.js';
import { checkModelFits } from '../limits.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { loadModelWithMetadata, type ModelOptions } from '../loadModel.js';
import { progressBar } from '../progress.js';
import { parseLabels, parseClassList, type SampleRequest } from './sample.js';
import { runAnalysis, writeAnalysis, ANALYSIS_FILES } from '../../analysis/report.js';


export function register(program: Command): void {
  program
    .command('analyze')
    .description('record expert routing while sampling; write heatmaps, load charts, expert maps, stats.json and index.html')
    .requiredOption('--model <file>', 'model weights (.safetensors with __metadata__.config, or .pt)')
    .requiredOption('--out <dir>', 'output folder (created if missing)')
    .option('--config <json|file>', 'model configuration when the file has none')
    .option('--preset <name>', 'model preset when the file has no configuration')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default: ema when present, as the official find_model)')
    .option('--samples <n>', 'number of images', positiveInt('--samples'), 8)
    .option('--class <c[,c...]>', 'class label(s), cycled over the samples (default 0, 1, 2, ...)')
    .option('--sampler <name>', 'ddpm | ddim | flow (default: flow for rectified-flow checkpoints, else ddpm)')
    .option('--steps <n>', 'sampling steps', positiveInt('--steps'), 50)
    .option('--cfg <scale>', 'guidance scale (1 = none)', numberArg('--cfg'), 4)
    .option('--guided-channels <n|all>', "channels guided: 'all' (standard) or 3 (the official forward_with_cfg)", 'all')
    .option('--seed <n>', 'random seed', nonNegativeInt('--seed'), 0)
    .option('--watch <i>', 'the image shown patch by patch in expert_map.png', nonNegativeInt('--watch'), 0)
    .option('--map-steps <n>', 'steps shown in expert_map.png', positiveInt('--map-steps'), 4)
    .option('--raw', 'also write routing.safetensors: every step\'s chosen experts and weights per token (grows with steps × images)')
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .option('--allow-nonfinite', 'load weights holding NaN or infinities (to inspect them)')
    .addOption(memoryBudgetOption())
    .action(async (o: { model: string; out: string; samples: number; class?: string; sampler?: string; steps: number; cfg: number; guidedChannels: string; seed: number; watch: number; mapSteps: number; raw?: boolean; backend: string; threads?: number } & ModelOptions) => {
      if (o.watch >= o.samples) throw new DitMoeError(`must be an image index in [0, ${o.samples - 1}]`, '--watch');
      const guidedChannels = o.guidedChannels === 'all' ? 'all' : /^\d+$/.test(o.guidedChannels.trim()) ? Number(o.guidedChannels) : NaN;
      if (Number.isNaN(guidedChannels)) throw new DitMoeError(`'${o.guidedChannels}' is neither 'all' nor a channel count`, '--guided-channels');
      if (o.sampler !== undefined && !['ddpm', 'ddim', 'flow'].includes(o.sampler)) throw new DitMoeError(`unknown sampler '${o.sampler}' (ddpm, ddim, flow)`, '--sampler');
      if (o.class !== undefined) parseClassList(o.class);
      checkOutputFolder('--out', o.out);
      // the files written into --out (analysis/report.ts) must not be an input
      refuseOverwritingInputs(ANALYSIS_FILES.map((f) => ['--out', path.join(o.out, f)]), [['--model', o.model], ['--config', o.config]]);
      const kernels = await kernelsFor(o.backend, o.threads);
      const { model, metadata: meta } = await loadModelWithMetadata(o.model, kernels, o);
      checkModelFits(model.config, kernels, o.cfg !== 1 ? 2 * o.samples : o.samples, `--samples ${o.samples}`, 0); // the file's weights: placed by the memory plan
      const sampler = (o.sampler ?? (meta.objective === 'flow' || !model.config.learn_sigma ? 'flow' : 'ddpm')) as SampleRequest['sampler'];
      const c = model.config;
      const labels = parseLabels(o.class, o.samples, c.num_classes);
      const bar = progressBar(o.steps, `analyzing ${o.samples} × ${sampler}`);
      const a = runAnalysis(model, { sampler, steps: o.steps, labels, cfg: o.cfg, guidedChannels, seed: o.seed, watchImage: o.watch, mapSteps: o.mapSteps, keepRaw: o.raw, onStep: () => bar.tick() });
      bar.stop();
      const { files } = writeAnalysis(o.out, a, { model: path.basename(o.model), sampler, steps: o.steps, cfg: o.cfg, 'guided channels': String(guidedChannels), seed: o.seed, images: o.samples, classes: Array.from(labels).join(', ') });
      process.stdout.write(`wrote ${files.length} files to ${o.out}: open ${path.join(o.out, 'index.html')}\n`);
    });
}
