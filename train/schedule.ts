/**
 * Learning-rate schedules, by optimiser step s = 0 … steps − 1:
 *   warm-up (s < W):   lr · (s + 1) / W
 *   constant:          lr
 *   cosine:            lrMin + (lr − lrMin) · ½ (1 + cos(π · (s − W) / (steps − W)))
 */
import { DitMoeError } from '../core/errors.js';

export type LrSchedule = 'constant' | 'cosine';

export interface LrScheduleConfig {
  lr: number;
  schedule: LrSchedule;
  warmup: number; // steps of linear warm-up (0: none)
  minLr: number; // the cosine's floor
  steps: number; // total steps (the cosine reaches minLr there)
}

export function learningRate(c: LrScheduleConfig, s: number): number {
  if (s < c.warmup) return (c.lr * (s + 1)) / c.warmup;
  if (c.schedule === 'constant') return c.lr;
  if (c.schedule !== 'cosine') throw new DitMoeError(`unknown schedule '${c.schedule as string}' (constant, cosine)`, '--schedule');
  const span = Math.max(1, c.steps - c.warmup);
  const progress = Math.min(1, (s - c.warmup) / span);
  return c.minLr + (c.lr - c.minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
