/**
 * `dit-moe eval --model CKPT --samples 100`: generates samples/10 per class with guidance and
 * scores them with the 1-nearest-neighbour classifier over the MNIST pixels (accuracy, mean
 * nearest-neighbour distance and the real digits' own as a yardstick).
 */
import type { Command } from 'commander';
import { DitMoeError } from '../../ref/errors.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { numberArg } from '../options.js';
import { loadModelFile, readModelTensors } from '../loadModel.js';
import { writeFileAtomic, readSafetensorsFile } from '../files.js';
import { gridPng } from '../images.js';
import { progressBar } from '../progress.js';
import { loadDataset } from '../../train/data.js';
import { generateSamples, evaluateSamples } from '../../train/eval.js';
import type { Objective } from '../../train/presets.js';

export function register(program: Command): void {
  program
    .command('eval')
    .description('class-conditional sample quality: 1-nearest-neighbour accuracy over the MNIST pixels and the mean nearest-neighbour distance')
    .requiredOption('--model <file>', 'a model or training checkpoint (.safetensors with __metadata__.config)')
    .option('--weights <which>', 'ema | model: which weights of a training checkpoint (default: ema when present)')
    .option('--samples <n>', 'number of samples, a multiple of the number of classes', numberArg('--samples', true), 100)
    .option('--data <mnist|file>', 'the reference images of the 1-NN classifier', 'mnist')
    .option('--objective <name>', 'flow | ddpm (default: from the file, else flow)')
    .option('--steps <n>', 'sampling steps (Euler for flow, DDIM for ddpm)', numberArg('--steps', true), 50)
    .option('--cfg <scale>', 'guidance scale', numberArg('--cfg'), 2)
    .option('--seed <n>', 'seed of the start noise', numberArg('--seed', true), 0)
    .option('--grid <file.png>', 'also write the samples as a grid (one row per class)')
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .addOption(memoryBudgetOption())
    .option('--json', 'print the report as JSON')
    .action(async (o: { model: string; weights?: string; samples: number; data: string; objective?: string; steps: number; cfg: number; seed: number; grid?: string; backend: string; threads?: number; memoryBudget?: number; json?: boolean }) => {
      const data = loadDataset(o.data);
      const kernels = await kernelsFor(o.backend, o.threads);
      // our training checkpoints hold the model's weights and ema.*: the EMA by default when present
      const isPt = /\.(pt|pth|bin|ckpt)$/i.test(o.model);
      const hasEma = !isPt && [...readSafetensorsFile(o.model).tensors.keys()].some((k) => k.startsWith('ema.'));
      const which = o.weights ?? (hasEma ? 'ema' : isPt ? undefined : 'model'); // .pt: the official choice (ema when present)
      const { metadata } = await readModelTensors(o.model, { weights: which });
      const model = await loadModelFile(o.model, kernels, { weights: which, memoryBudget: o.memoryBudget });
      const config = model.config;
      const objective = (o.objective ?? metadata.objective ?? 'flow') as Objective;
      if (objective !== 'flow' && objective !== 'ddpm') throw new DitMoeError(`unknown objective '${objective}' (flow, ddpm)`, '--objective');
      const K = Math.min(config.num_classes, data.numClasses);
      if (o.samples % K !== 0 || o.samples < K) throw new DitMoeError(`${o.samples} is not a positive multiple of the ${K} classes`, '--samples');
      if (data.C !== config.in_channels || data.H !== config.input_size) throw new DitMoeError(`reference images are [${data.C}, ${data.H}, ${data.W}], the model makes [${config.in_channels}, ${config.input_size}, ${config.input_size}]`, '--data');
      const perClass = o.samples / K;
      const classes = Array.from({ length: K }, (_, k) => k);
      const bar = process.stderr.isTTY ? progressBar(o.steps, `sampling ${o.samples}`) : null;
      const t0 = performance.now();
      const { images, labels } = generateSamples(model, classes, perClass, { objective, steps: o.steps, cfg: o.cfg, seed: o.seed }, () => bar?.tick());
      bar?.stop();
      const sampleSecs = (performance.now() - t0) / 1000;
      const r = evaluateSamples(images, labels, data, o.seed);
      if (o.grid) writeFileAtomic(o.grid, gridPng({ data: images, N: labels.length, C: config.in_channels, H: config.input_size, W: config.input_size }, perClass, 2));
      if (o.json) {
        process.stdout.write(JSON.stringify({ model: o.model, weights: which, objective, steps: o.steps, cfg: o.cfg, seed: o.seed, sampleSeconds: sampleSecs, ...r }) + '\n');
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
