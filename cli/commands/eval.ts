/**
 * `dit-moe eval --model CKPT --samples 100`: generates samples/10 per class with guidance and
 * scores them with the 1-nearest-neighbour classifier over the MNIST pixels (accuracy, mean
 * nearest-neighbour distance and the real digits' own as a yardstick).
 */
import type { Command } from 'commander';
import { DitMoeError } from '../../core/errors.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { numberArg, onOff, nonNegativeInt, positiveInt } from '../options.js';
import { refuseOverwritingInputs } from '../../node/outputs.js';
import { checkModelFits } from '../limits.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { loadModelFile, openModelTensors } from '../loadModel.js';
import { writeFileAtomic } from '../../node/files.js';
import { gridPng } from '../../render/images.js';
import { progressBar } from '../progress.js';
import { loadDataset } from '../../train/data.js';
import { generateSamples, evaluateSamples } from '../../train/eval.js';
import type { Objective } from '../../train/presets.js';
import { SAMPLERS, SPACINGS, checkSampler, modelEvaluations, type SamplerName } from '../../ref/diffusion/sampling.js';
import type { DpmSkipType } from '../../ref/diffusion/dpmSolver.js';

export function register(program: Command): void {
  program
    .command('eval')
    .description('class-conditional sample quality: 1-nearest-neighbour accuracy over the MNIST pixels and the mean nearest-neighbour distance')
    .requiredOption('--model <file>', 'a model or training checkpoint (.safetensors with __metadata__.config)')
    .option('--weights <which>', 'ema | model: which weights of a training checkpoint (default: ema when present)')
    .option('--samples <n>', 'number of samples, a multiple of the number of classes', positiveInt('--samples'), 100)
    .option('--data <mnist|file>', 'the reference images of the 1-NN classifier', 'mnist')
    .option('--objective <name>', 'flow | ddpm (default: from the file, else flow)')
    .option('--steps <n>', 'sampling steps (Euler for flow, DDIM for ddpm, unless --sampler)', positiveInt('--steps'), 50)
    .option('--sampler <name>', `${SAMPLERS.join(' | ')} (default: flow for flow models, ddim for ddpm; docs/solvers.md)`)
    .option('--order <n>', 'DPM-Solver order 1–3 (default: from the sampler name)', positiveInt('--order'))
    .option('--spacing <name>', `DPM-Solver time steps: ${SPACINGS.join(' | ')}`)
    .option('--lower-order-final <on|off>', 'DPM-Solver multistep: lower orders in the last steps when steps < 10 (default on)', onOff('--lower-order-final'))
    .option('--cfg <scale>', 'guidance scale', numberArg('--cfg'), 2)
    .option('--seed <n>', 'seed of the start noise', nonNegativeInt('--seed'), 0)
    .option('--grid <file.png>', 'also write the samples as a grid (one row per class)')
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .addOption(memoryBudgetOption())
    .option('--json', 'print the report as JSON')
    .option('--allow-nonfinite', 'load weights holding NaN or infinities (to inspect them)')
    .action(async (o: { model: string; weights?: string; samples: number; data: string; objective?: string; steps: number; sampler?: string; order?: number; spacing?: string; lowerOrderFinal?: boolean; cfg: number; seed: number; grid?: string; backend: string; threads?: number; json?: boolean; allowNonfinite?: boolean; memoryBudget?: number }) => {
      if (o.weights !== undefined && o.weights !== 'model' && o.weights !== 'ema') throw new DitMoeError(`must be model or ema, not '${o.weights}'`, '--weights');
      if (o.objective !== undefined && o.objective !== 'flow' && o.objective !== 'ddpm') throw new DitMoeError(`unknown objective '${o.objective}' (flow, ddpm)`, '--objective');
      if (o.sampler !== undefined && !(SAMPLERS as readonly string[]).includes(o.sampler)) throw new DitMoeError(`unknown sampler '${o.sampler}' (${SAMPLERS.join(', ')})`, '--sampler');
      if (o.grid !== undefined && !/\.png$/i.test(o.grid)) throw new DitMoeError('must end in .png', '--grid');
      refuseOverwritingInputs([['--grid', o.grid]], [['--model', o.model], ['--data', o.data]]);
      const kernels = await kernelsFor(o.backend, o.threads);
      // our training checkpoints hold the model's weights and ema.*: the EMA by default when present
      const isPt = /\.(pt|pth|bin|ckpt)$/i.test(o.model);
      // the header or zip directory only (no tensor read): the metadata and whether it holds EMA weights
      const opened = await openModelTensors(o.model, { weights: o.weights as 'model' | 'ema' | undefined });
      opened.source.close();
      const { metadata } = opened.file;
      const hasEma = !isPt && [...opened.file.tensors.keys()].some((k) => k.startsWith('ema.'));
      const which = o.weights ?? (hasEma ? 'ema' : isPt ? undefined : 'model'); // .pt: the official choice (ema when present)
      const model = await loadModelFile(o.model, kernels, { weights: which, allowNonfinite: o.allowNonfinite, memoryBudget: o.memoryBudget });
      const config = model.config;
      const objective = (o.objective ?? metadata.objective ?? 'flow') as Objective;
      if (objective !== 'flow' && objective !== 'ddpm') throw new DitMoeError(`unknown objective '${objective}' in the file (flow, ddpm)`, o.model);
      if (o.objective !== undefined && metadata.objective !== undefined && o.objective !== metadata.objective) throw new DitMoeError(`was trained with the ${metadata.objective} objective; its numbers under ${o.objective} would mean nothing`, '--objective');
      if (objective === 'ddpm' && !config.learn_sigma) throw new DitMoeError('this model has no learned sigma; evaluate it with --objective flow', '--objective');
      const lof = o.lowerOrderFinal;
      const solver = o.sampler === undefined && o.order === undefined && o.spacing === undefined && lof === undefined ? undefined : { sampler: (o.sampler ?? (objective === 'flow' ? 'flow' : 'ddim')) as SamplerName, order: o.order, spacing: o.spacing as DpmSkipType | undefined, lowerOrderFinal: lof };
      if (solver) checkSampler({ ...solver, steps: o.steps }, objective);
      checkModelFits(config, kernels, o.cfg !== 1 ? 2 * o.samples : o.samples, `--samples ${o.samples}`, 0); // the file's weights: placed by the memory plan
      const data = loadDataset(o.data); // after the model's checks: loading MNIST takes a second
      const K = Math.min(config.num_classes, data.numClasses);
      if (o.samples % K !== 0 || o.samples < K) throw new DitMoeError(`${o.samples} is not a positive multiple of the ${K} classes`, '--samples');
      if (data.C !== config.in_channels || data.H !== config.input_size) throw new DitMoeError(`reference images are [${data.C}, ${data.H}, ${data.W}], the model makes [${config.in_channels}, ${config.input_size}, ${config.input_size}]`, '--data');
      const perClass = o.samples / K;
      const classes = Array.from({ length: K }, (_, k) => k);
      const bar = progressBar(o.steps, `sampling ${o.samples}`); // on a terminal a bar, else a line every 5 s
      const t0 = performance.now();
      const { images, labels } = generateSamples(model, classes, perClass, { objective, steps: o.steps, cfg: o.cfg, seed: o.seed, solver }, () => bar?.tick());
      bar?.stop();
      const sampleSecs = (performance.now() - t0) / 1000;
      const r = evaluateSamples(images, labels, data, o.seed);
      if (o.grid) writeFileAtomic(o.grid, gridPng({ data: images, N: labels.length, C: config.in_channels, H: config.input_size, W: config.input_size }, perClass, 2));
      if (o.json) {
        process.stdout.write(JSON.stringify({ model: o.model, weights: which, objective, sampler: solver?.sampler ?? (objective === 'flow' ? 'flow' : 'ddim'), ...(solver && { order: solver.order, spacing: solver.spacing }), evaluations: modelEvaluations({ sampler: solver?.sampler ?? 'flow', steps: o.steps }), steps: o.steps, cfg: o.cfg, seed: o.seed, sampleSeconds: sampleSecs, ...r }) + '\n');
        return;
      }
      process.stdout.write(
        [
          `${o.model} (${which ?? 'checkpoint default'} weights, ${objective}, ${o.steps} steps, guidance ${o.cfg}, seed ${o.seed}): ${r.samples} samples in ${sampleSecs.toFixed(1)} s`,
          `1-NN accuracy: ${(100 * r.accuracy).toFixed(1)}% (per class: ${r.perClass.map((a) => (100 * a).toFixed(0)).join(' ')})`,
          `mean nearest-neighbour distance: ${r.meanNNDistance.toFixed(3)} (real digits to their nearest other real digit: ${r.realNNDistance.toFixed(3)}; far below it means copying, far above means not digit-like)`,
        ].join('\n') + '\n',
      );
    });
}
