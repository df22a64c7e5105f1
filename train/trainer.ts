/**
 * The training step and loop. One optimiser step s:
 *   x0, y       = batch s of the data (BatchSampler: a pure function of seed and s)
 *   y_i         ← null class with probability class_dropout_prob      (guidance, official LabelEmbedder)
 *   flow:  t ~ sigmoid(N(0,1)) (or U(0,1)), z1 ~ N(0, I), x_t = (1 − t) x0 + t z1,
 *          loss = mean (z1 − x0 − v_θ(x_t, t, y))²                    (t fed as is, in (0, 1))
 *   ddpm:  t ~ U{0 … 999}, ε ~ N(0, I), x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε,
 *          loss = mean(MSE(ε) + VB)                                   (DiT's hybrid loss)
 *   total       = loss + Σ_layers aux_layer                            (balance losses, coefficient 1)
 *   the batch is cut into micro-batches; each one's gradient is scaled by 1/(number of them) and
 *   accumulated, so the step sees the mean gradient, and the optimiser steps once per batch
 *   grads       ← grads · min(1, clip / (‖grads‖ + 1e-6))                (optional, as clip_grad_norm_)
 *   AdamW step with lr(s); EMA update
 * The random draws of step s (dropout mask, then t, then the noise, over the whole batch in
 * order) come from the stream (seed, 'step', s), so they do not depend on the micro-batch split
 * and a resumed run repeats an uninterrupted one bit for bit.
 */
import { DitMoeError } from '../core/errors.js';
import type { DiTModel } from '../ref/model.js';
import type { ParamStore } from '../ref/params.js';
import { rfSampleT, rfInterpolate, rfLossForward, rfLossBackward, type RfTimeSampling } from '../ref/diffusion/rectifiedFlow.js';
import { qSample } from '../ref/diffusion/gaussian.js';
import { ddpmLossForward, ddpmLossBackward } from '../ref/diffusion/losses.js';
import { createDiffusion } from '../ref/diffusion/respace.js';
import type { DiffusionSchedule } from '../ref/diffusion/schedule.js';
import { dims } from '../ref/config.js';
import { AdamW, trainableRanges } from './adamw.js';
import { Ema } from './ema.js';
import { BatchSampler, type Dataset } from './data.js';
import { streamRng } from './random.js';
import { learningRate, type LrSchedule } from './schedule.js';
import type { Objective } from './presets.js';

export interface TrainArgs {
  objective: Objective;
  tSampling: RfTimeSampling; // flow: 'logit_normal' (official ln=True) or 'uniform'
  steps: number; // optimiser steps in the whole run
  batch: number; // images per optimiser step
  microBatch: number; // images per forward/backward; batch must be a multiple
  lr: number;
  schedule: LrSchedule;
  warmup: number;
  minLr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  clipGrad: number; // 0: off
  labelDropout: number; // probability of the null class (the model's class_dropout_prob)
  ema: number; // decay; 0: no EMA
  emaWarmup: boolean;
  seed: number;
  /** The data set the run trains on (train/data.ts datasetIdentity), checked on resume; absent in older checkpoints. */
  data?: { path: string; header_sha256: string };
}

export const DEFAULT_TRAIN_ARGS: TrainArgs = {
  objective: 'flow',
  tSampling: 'logit_normal',
  steps: 1000,
  batch: 128,
  microBatch: 128,
  lr: 3e-4,
  schedule: 'constant',
  warmup: 0,
  minLr: 0,
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  clipGrad: 0,
  labelDropout: 0.1,
  ema: 0,
  emaWarmup: true,
  seed: 0,
};

export interface StepLog {
  step: number; // 1-based: the number of optimiser steps done after this one
  loss: number; // the objective (mean over the batch)
  aux: number[]; // each layer's balance loss (mean over micro-batches)
  total: number; // loss + Σ aux
  load: number[][]; // [layer][expert]: share of the routing slots (tokens·k) that chose the expert
  lr: number;
  gradNorm: number; // before clipping
  seconds: number; // wall time of the step
}

/** Checks training arguments against the data and model; returns them. */
export function checkTrainArgs(a: TrainArgs, model: DiTModel, data: Dataset): TrainArgs {
  const c = model.config;
  const bad = (field: string, msg: string) => new DitMoeError(msg, `--${field}`);
  if (a.objective !== 'flow' && a.objective !== 'ddpm') throw bad('objective', `unknown objective '${a.objective as string}' (flow, ddpm)`);
  if (a.tSampling !== 'logit_normal' && a.tSampling !== 'uniform') throw bad('t-sampling', `unknown time sampling '${a.tSampling as string}' (logit_normal, uniform)`);
  if (a.schedule !== 'constant' && a.schedule !== 'cosine') throw bad('schedule', `unknown schedule '${a.schedule as string}' (constant, cosine)`);
  if (a.objective === 'ddpm' && !c.learn_sigma) throw bad('objective', 'ddpm needs a model with learn_sigma true (the hybrid loss learns the variance)');
  for (const f of ['steps', 'batch', 'microBatch'] as const) if (!Number.isInteger(a[f]) || a[f] < 1) throw bad(f, `${f} = ${a[f]}, expected a positive integer`);
  if (a.batch % a.microBatch !== 0) throw bad('micro-batch', `batch ${a.batch} is not a multiple of the micro-batch ${a.microBatch}`);
  if (a.batch > data.N) throw bad('batch', `batch ${a.batch} is larger than the data set (${data.N} images)`);
  for (const f of ['lr', 'minLr', 'weightDecay', 'eps', 'clipGrad', 'warmup'] as const) if (!Number.isFinite(a[f]) || a[f] < 0) throw bad(f, `${f} = ${a[f]}, expected a finite number ≥ 0`);
  if (!(a.labelDropout >= 0 && a.labelDropout <= 1)) throw bad('label-dropout', `${a.labelDropout} is not a probability`);
  if (a.labelDropout > 0 && c.class_dropout_prob === 0) throw bad('label-dropout', 'the model has no null class (class_dropout_prob 0); use --label-dropout 0');
  if (!(a.ema === 0 || (a.ema > 0 && a.ema < 1))) throw bad('ema', `decay ${a.ema} must be in (0, 1), or 0 for none`);
  if (!Number.isSafeInteger(a.seed) || a.seed < 0) throw bad('seed', `${a.seed} is not a non-negative integer`);
  if (data.C !== c.in_channels || data.H !== c.input_size || data.W !== c.input_size) throw new DitMoeError(`images are [${data.C}, ${data.H}, ${data.W}], the model takes [${c.in_channels}, ${c.input_size}, ${c.input_size}]`, '--data');
  if (data.numClasses > c.num_classes) throw new DitMoeError(`data has ${data.numClasses} classes, the model ${c.num_classes}`, '--data');
  return a;
}

export class Trainer {
  readonly opt: AdamW;
  readonly ema: Ema | null;
  readonly sampler: BatchSampler;
  readonly grads: ParamStore;
  step = 0; // optimiser steps done
  private readonly ranges: [number, number][];
  private readonly diffusion: DiffusionSchedule | null;

  constructor(
    readonly model: DiTModel,
    readonly data: Dataset,
    readonly args: TrainArgs,
  ) {
    checkTrainArgs(args, model, data);
    this.opt = new AdamW(model.params, { lr: args.lr, beta1: args.beta1, beta2: args.beta2, eps: args.eps, weightDecay: args.weightDecay });
    this.ema = args.ema > 0 ? new Ema(model.params, args.ema, args.emaWarmup) : null;
    this.sampler = new BatchSampler(data, args.batch, args.seed);
    this.grads = model.params.zerosLike();
    this.ranges = trainableRanges(model.params);
    this.diffusion = args.objective === 'ddpm' ? createDiffusion({}) : null;
  }

  lrAt(s: number): number {
    const a = this.args;
    return learningRate({ lr: a.lr, schedule: a.schedule, warmup: a.warmup, minLr: a.minLr, steps: a.steps }, s);
  }

  /** Runs one optimiser step (forward, backward over the micro-batches, AdamW, EMA). */
  trainStep(): StepLog {
    const t0 = performance.now();
    const a = this.args;
    const model = this.model;
    const c = model.config;
    const { C, H, W } = this.data;
    const HW = H * W;
    const P = C * HW;
    const B = a.batch;
    const s = this.step;
    const { x: x0, y } = this.sampler.get(s);

    // the random draws of step s, in a fixed order: dropout mask, t, noise
    const rng = streamRng(a.seed, 'step', s);
    for (let i = 0; i < B; i++) if (rng.uniform() < a.labelDropout) y[i] = c.num_classes;
    let t: Float32Array;
    if (a.objective === 'flow') t = rfSampleT(rng, B, a.tSampling);
    else {
      t = new Float32Array(B);
      for (let i = 0; i < B; i++) t[i] = Math.floor(rng.uniform() * this.diffusion!.numTimesteps);
    }
    const noise = rng.fillNormal(new Float32Array(B * P));
    const xt = new Float32Array(B * P);
    if (a.objective === 'flow') rfInterpolate(xt, x0, noise, t, B, P);
    else qSample(xt, x0, noise, t, this.diffusion!, B, P);

    // forward and backward per micro-batch, gradients averaged
    const nMicro = B / a.microBatch;
    const mb = a.microBatch;
    const outC = dims(c).outChannels;
    const E = c.num_experts;
    this.grads.data.fill(0);
    let loss = 0;
    const aux = new Array<number>(c.depth).fill(0);
    const counts = Array.from({ length: c.depth }, () => new Float64Array(E));
    for (let j = 0; j < nMicro; j++) {
      const lo = j * mb;
      const sl = (arr: Float32Array, per: number) => arr.subarray(lo * per, (lo + mb) * per);
      const xs = sl(x0, P);
      const ns = sl(noise, P);
      const ts = t.subarray(lo, lo + mb);
      const ys = y.subarray(lo, lo + mb);
      const f = model.forwardTrain(sl(xt, P), [mb, C, H, W], ts, ys);
      try {
        const dout = new Float32Array(f.out.length);
        let l: number;
        if (a.objective === 'flow') {
          l = rfLossForward(f.out, xs, ns, mb, C, HW, outC).loss;
          rfLossBackward(dout, f.out, xs, ns, mb, C, HW, outC);
        } else {
          const xts = sl(xt, P);
          l = ddpmLossForward(this.diffusion!, xs, xts, ns, ts, f.out, mb, C, HW).loss;
          ddpmLossBackward(dout, this.diffusion!, xs, xts, ns, ts, f.out, mb, C, HW);
        }
        if (!Number.isFinite(l) || !f.aux.every(Number.isFinite)) throw new DitMoeError(`loss is ${Number.isFinite(l) ? 'finite but a balance loss is ' + f.aux.find((v) => !Number.isFinite(v)) : l} at step ${s + 1}; stopped before updating the weights`, 'train');
        if (nMicro > 1) for (let i = 0; i < dout.length; i++) dout[i] /= nMicro;
        model.backward(dout, f.cache!, this.grads, 1 / nMicro);
        loss += l / nMicro;
        for (let i = 0; i < c.depth; i++) {
          aux[i] += f.aux[i] / nMicro;
          const idx = f.cache!.blocks[i].moe.router.topkIdx;
          for (let q = 0; q < idx.length; q++) counts[i][idx[q]]++;
        }
      } finally {
        model.release(f.cache!); // the activations of this micro-batch
      }
    }

    // gradient norm over the trainable parameters; clip
    let sq = 0;
    const g = this.grads.data;
    for (const [lo, hi] of this.ranges) for (let i = lo; i < hi; i++) sq += g[i] * g[i];
    const gradNorm = Math.sqrt(sq);
    if (!Number.isFinite(gradNorm)) throw new DitMoeError(`gradient norm is ${gradNorm} at step ${s + 1} (loss ${loss}); stopped before updating the weights`, 'train');
    if (a.clipGrad > 0) {
      const coef = a.clipGrad / (gradNorm + 1e-6);
      if (coef < 1) for (const [lo, hi] of this.ranges) for (let i = lo; i < hi; i++) g[i] *= coef;
    }

    const lr = this.lrAt(s);
    this.opt.update(this.grads, lr);
    model.kernels.weightsChanged?.();
    this.ema?.update(model.params);
    this.step++;
    const load = counts.map((row) => {
      const tot = row.reduce((p, q) => p + q, 0);
      return Array.from(row, (v) => v / tot);
    });
    return { step: this.step, loss, aux, total: loss + aux.reduce((p, q) => p + q, 0), load, lr, gradNorm, seconds: (performance.now() - t0) / 1000 };
  }
}
