/**
 * Exponential moving average of the weights (official `update_ema`, decay 0.9999):
 *   ema ← d·ema + (1 − d)·p          over every parameter (pos_embed included; it never changes)
 * With `warmup` the decay of update number s (counted from 0) is min(decay, (1 + s)/(10 + s)),
 * so that on short runs the average forgets the random initialisation quickly (an EMA of 0.999
 * started at the initial weights still holds e^{-1.34} ≈ a quarter of them after 1340 steps).
 */
import { DitMoeError } from '../core/errors.js';
import type { ParamStore } from '../ref/params.js';

export class Ema {
  readonly shadow: Float32Array; // the averaged weights, same layout as the parameters
  updates = 0; // updates applied so far

  constructor(
    params: ParamStore,
    readonly decay: number,
    readonly warmup: boolean,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new DitMoeError(`decay ${decay} must be in [0, 1)`, '--ema');
    this.shadow = Float32Array.from(params.data);
  }

  /** The decay used by the next update. */
  currentDecay(): number {
    const s = this.updates;
    return this.warmup ? Math.min(this.decay, (1 + s) / (10 + s)) : this.decay;
  }

  update(params: ParamStore): void {
    const d = this.currentDecay();
    const p = params.data;
    const e = this.shadow;
    if (p.length !== e.length) throw new DitMoeError(`parameter buffer has ${p.length} elements, the EMA ${e.length}`, 'EMA');
    for (let i = 0; i < e.length; i++) e[i] = d * e[i] + (1 - d) * p[i];
    this.updates++;
  }
}
