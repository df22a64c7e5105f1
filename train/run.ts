/**
 * A training run with its outputs in one folder (`--out`):
 *   checkpoint.safetensors   the full state (weights, EMA, AdamW moments, step, args), every
 *                            `checkpointEvery` steps and at the end; what `--resume` continues
 *   model.safetensors        at the end (or a clean stop): the weights to sample from (EMA when the run keeps one)
 *   log.jsonl                one line per step: loss, total, each layer's balance loss and
 *                            expert load, lr, gradient norm, seconds
 *   loss.png                 the loss curve (per step, and its moving average)
 *   samples/step-NNNNNN.png  every `sampleEvery` steps: 10 classes (rows) × a few seeds
 * A non-finite loss stops the run with the step named; the last checkpoint written stays as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitMoeError } from '../core/errors.js';
import { DiTModel } from '../ref/model.js';
import { ParamStore } from '../ref/params.js';
import { writeFileAtomic } from '../node/files.js';
import { gridPng } from '../render/images.js';
import { Trainer, type StepLog } from './trainer.js';
import { writeCheckpoint, serializeModel, restoreTrainer, type Checkpoint } from './checkpoint.js';
import { generateSamples } from './eval.js';
import { lineChart } from '../render/charts.js';
import { svgToPng } from '../render/rasterize.js';

export interface RunOutputs {
  out: string; // folder
  checkpointEvery: number; // 0: only at the end
  sampleEvery: number; // 0: only at the end
  samplesPerClass: number; // columns of the sample grid
  sampleSteps: number;
  cfg: number;
}

export interface RunHooks {
  onStep?(log: StepLog, tr: Trainer): void;
  onMessage?(line: string): void;
  /** Checked between steps: true stops the run after writing a checkpoint (Ctrl-C). */
  shouldStop?(): boolean;
}

export function checkpointPath(out: string): string {
  return path.join(out, 'checkpoint.safetensors');
}

function readLog(file: string, upTo: number): StepLog[] {
  if (!fs.existsSync(file)) return [];
  const logs: StepLog[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const l = JSON.parse(line) as StepLog;
      if (l.step <= upTo) logs.push(l);
    } catch {
      /* a line cut by a kill: dropped */
    }
  }
  return logs;
}

/** The loss per step and its moving average over `w` steps. */
export function writeLossPlot(file: string, logs: StepLog[], w = 50): void {
  if (!logs.length) return;
  const x = logs.map((l) => l.step);
  const y = logs.map((l) => l.loss);
  const avg: number[] = [];
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    s += y[i];
    if (i >= w) s -= y[i - w];
    avg.push(s / Math.min(i + 1, w));
  }
  const chart = lineChart({
    title: 'Training loss',
    xLabel: 'step',
    yLabel: 'loss',
    series: [
      { x, y, color: [160, 185, 225], label: 'loss per step', width: 1 },
      { x, y: avg, color: [200, 30, 30], label: `mean of the last ${w} steps`, width: 2 },
    ],
  });
  writeFileAtomic(file, svgToPng(chart.toString(), 2));
}

/** A grid of samples from the EMA weights (or the model's): one row per class, `perClass` seeds per row. */
export function writeSampleGrid(file: string, tr: Trainer, o: RunOutputs): void {
  const m = tr.model;
  const c = m.config;
  const weights = tr.ema ? new ParamStore(m.params.specs, Float32Array.from(tr.ema.shadow)) : m.params;
  const sampler = weights === m.params ? m : new DiTModel(c, weights, m.kernels);
  const classes = Array.from({ length: Math.min(10, c.num_classes) }, (_, k) => k);
  const { images } = generateSamples(sampler, classes, o.samplesPerClass, { objective: tr.args.objective, steps: o.sampleSteps, cfg: o.cfg, seed: tr.args.seed });
  m.kernels.weightsChanged?.();
  writeFileAtomic(file, gridPng({ data: images, N: classes.length * o.samplesPerClass, C: c.in_channels, H: c.input_size, W: c.input_size }, o.samplesPerClass, 2));
}

/** Runs (or resumes) training to `tr.args.steps`, writing the outputs; returns the step logs of the whole run. */
export async function runTraining(tr: Trainer, o: RunOutputs, resumeFrom: { ck: Checkpoint; file: string } | null, hooks: RunHooks = {}): Promise<StepLog[]> {
  fs.mkdirSync(path.join(o.out, 'samples'), { recursive: true });
  const ckFile = checkpointPath(o.out);
  const logFile = path.join(o.out, 'log.jsonl');
  const plotFile = path.join(o.out, 'loss.png');
  if (resumeFrom) restoreTrainer(tr, resumeFrom.ck, resumeFrom.file);
  // the log continues the checkpoint's run: lines past its step (written after it by a killed run) go
  const logs = resumeFrom ? readLog(logFile, tr.step) : [];
  writeFileAtomic(logFile, logs.map((l) => JSON.stringify(l) + '\n').join(''));
  let lastGood = resumeFrom ? tr.step : -1;
  const say = hooks.onMessage ?? (() => {});
  const saveCheckpoint = () => {
    writeCheckpoint(ckFile, tr);
    lastGood = tr.step;
  };
  while (tr.step < tr.args.steps) {
    let log: StepLog;
    try {
      log = tr.trainStep();
    } catch (e) {
      writeLossPlot(plotFile, logs);
      if (e instanceof DitMoeError) {
        const keep = lastGood >= 0 ? `the last good checkpoint (step ${lastGood}) is ${ckFile}` : 'no checkpoint was written yet';
        throw new DitMoeError(`${e.message}; ${keep}`);
      }
      throw e;
    }
    logs.push(log);
    fs.appendFileSync(logFile, JSON.stringify(log) + '\n');
    hooks.onStep?.(log, tr);
    const s = tr.step;
    const last = s === tr.args.steps;
    if ((o.checkpointEvery > 0 && s % o.checkpointEvery === 0) || last) {
      saveCheckpoint();
      writeLossPlot(plotFile, logs);
    }
    if ((o.sampleEvery > 0 && s % o.sampleEvery === 0) || last) {
      const f = path.join(o.out, 'samples', `step-${String(s).padStart(6, '0')}.png`);
      writeSampleGrid(f, tr, o);
      say(`samples: ${f}`);
    }
    if (hooks.shouldStop?.() && !last) {
      saveCheckpoint();
      writeFileAtomic(path.join(o.out, 'model.safetensors'), serializeModel(tr, true));
      writeLossPlot(plotFile, logs);
      say(`stopped at step ${s}; continue with --resume`);
      return logs;
    }
    await new Promise((r) => setImmediate(r)); // let signals and the progress bar through
  }
  if (lastGood !== tr.step) saveCheckpoint();
  // a resumed run that was already complete (killed before its last outputs) gets them now
  const lastGrid = path.join(o.out, 'samples', `step-${String(tr.step).padStart(6, '0')}.png`);
  if (!fs.existsSync(lastGrid)) writeSampleGrid(lastGrid, tr, o);
  writeFileAtomic(path.join(o.out, 'model.safetensors'), serializeModel(tr, true));
  writeLossPlot(plotFile, logs);
  return logs;
}
