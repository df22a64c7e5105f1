/**
 * AdamW (Loshchilov & Hutter 2019) exactly as `torch.optim.AdamW` (amsgrad off), over the flat
 * parameter buffer of a ParamStore; parameters that are not trainable (`pos_embed`) are skipped.
 * At step t (counted from 1), for every trainable element with gradient g:
 *   p ← p · (1 − lr·wd)                                   (decoupled weight decay, first)
 *   m ← β1·m + (1 − β1)·g                                 (first moment)
 *   v ← β2·v + (1 − β2)·g²                                (second moment)
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)     (eps outside the sqrt)
 * m and v are float32 like PyTorch's state; each update is evaluated in float64 and rounded once.
 */
import { DitMoeError } from '../core/errors.js';
import type { ParamStore } from '../ref/params.js';
import { numel } from '../core/tensor.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW's defaults except the learning rate; the official DiT training uses weight_decay 0. */
export const ADAMW_DEFAULTS: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** [start, end) element ranges of the trainable parameters in the flat buffer. */
export function trainableRanges(params: ParamStore): [number, number][] {
  const ranges: [number, number][] = [];
  for (const s of params.specs) {
    if (!s.trainable) continue;
    const o = params.offsets.get(s.name)!;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === o) last[1] = o + numel(s.shape);
    else ranges.push([o, o + numel(s.shape)]);
  }
  return ranges;
}

export class AdamW {
  readonly m: ParamStore; // first moments, same layout as the parameters
  readonly v: ParamStore; // second moments
  step = 0; // optimiser steps taken so far
  private readonly ranges: [number, number][];

  constructor(
    readonly params: ParamStore,
    readonly config: AdamWConfig,
  ) {
    for (const k of ['lr', 'eps', 'weightDecay'] as const) if (!Number.isFinite(config[k]) || config[k] < 0) throw new DitMoeError(`${k} = ${config[k]}, expected a finite number ≥ 0`, 'AdamW');
    for (const k of ['beta1', 'beta2'] as const) if (!(config[k] >= 0 && config[k] < 1)) throw new DitMoeError(`${k} = ${config[k]}, expected a number in [0, 1)`, 'AdamW');
    this.m = params.zerosLike();
    this.v = params.zerosLike();
    this.ranges = trainableRanges(params);
  }

  /** One AdamW step with gradients `grads` (same layout); `lr` overrides the configured rate (schedules). */
  update(grads: ParamStore, lr = this.config.lr): void {
    if (grads.data.length !== this.params.data.length) throw new DitMoeError(`gradient buffer has ${grads.data.length} elements, the parameters ${this.params.data.length}`, 'AdamW');
    const { beta1, beta2, eps, weightDecay } = this.config;
    this.step++;
    const t = this.step;
    const stepSize = lr / (1 - Math.pow(beta1, t));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
    const decay = 1 - lr * weightDecay;
    const p = this.params.data;
    const g = grads.data;
    const m = this.m.data;
    const v = this.v.data;
    for (const [a, b] of this.ranges) {
      for (let i = a; i < b; i++) {
        const gi = g[i];
        const pi = Math.fround(p[i] * decay);
        const mi = (m[i] = beta1 * m[i] + (1 - beta1) * gi);
        const vi = (v[i] = beta2 * v[i] + (1 - beta2) * gi * gi);
        p[i] = pi - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
      }
    }
  }
}
