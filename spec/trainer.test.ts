/**
 * The training loop on a tiny model (input 8×8×1, patch 2, hidden 32, depth 2, 4 experts top-2)
 * and a synthetic data set: it learns, gradient accumulation averages micro-batch gradients
 * with one optimiser step per batch, label dropout, expert-load logging, the LR schedule, and a
 * non-finite loss stops with the step named before any weight changes.
 */
import { describe, it, expect, vi } from 'vitest';
import { Trainer } from '../train/trainer.js';
import { learningRate } from '../train/schedule.js';
import { tinyModel, barsDataset, args } from './trainHelpers.js';

describe('Trainer', () => {
  it('lowers the rectified-flow loss on a learnable data set', () => {
    const tr = new Trainer(tinyModel(), barsDataset(), args({ steps: 60 }));
    const losses: number[] = [];
    for (let i = 0; i < 60; i++) losses.push(tr.trainStep().loss);
    const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
    // the first steps sit near the variance of z1 − x0 (≈ 2); a model that learns nothing stays there
    expect(mean(losses.slice(-10))).toBeLessThan(0.7 * mean(losses.slice(0, 10)));
  });

  it('the DDPM objective runs and its loss is finite and falls', () => {
    const tr = new Trainer(tinyModel({ learn_sigma: true }), barsDataset(), args({ objective: 'ddpm', steps: 40 }));
    const losses: number[] = [];
    for (let i = 0; i < 40; i++) losses.push(tr.trainStep().loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)));
  });

  it('gradient accumulation: micro-batches 2×4 give the gradient of the batch of 8 and one optimiser step', () => {
    // balance loss off: it is not additive over micro-batches (Σ P·f of a union ≠ mean of parts)
    const full = new Trainer(tinyModel({ aux_loss_alpha: 0 }), barsDataset(), args({ microBatch: 8 }));
    const acc = new Trainer(tinyModel({ aux_loss_alpha: 0 }), barsDataset(), args({ microBatch: 4 }));
    const lf = full.trainStep();
    const la = acc.trainStep();
    expect(acc.opt.step).toBe(1);
    expect(Math.abs(la.loss - lf.loss)).toBeLessThan(1e-6 * Math.max(1, lf.loss));
    // float32 sums in another order: 1e-5 of the largest gradient
    let scale = 0;
    for (const v of full.grads.data) scale = Math.max(scale, Math.abs(v));
    expect(scale).toBeGreaterThan(0);
    for (let i = 0; i < full.grads.data.length; i++) expect(Math.abs(acc.grads.data[i] - full.grads.data[i])).toBeLessThanOrEqual(1e-5 * scale);
    // a broken accumulation that steps every micro-batch or sums instead of averaging differs far more
    const summed = new Trainer(tinyModel({ aux_loss_alpha: 0 }), barsDataset(), args({ microBatch: 4 }));
    summed.trainStep();
    let off = 0;
    for (let i = 0; i < full.grads.data.length; i++) off = Math.max(off, Math.abs(2 * summed.grads.data[i] - full.grads.data[i]));
    expect(off).toBeGreaterThan(0.1 * scale);
  });

  it('logs each layer balance loss and expert load (shares summing to 1)', () => {
    const tr = new Trainer(tinyModel(), barsDataset(), args());
    const log = tr.trainStep();
    expect(log.aux).toHaveLength(2);
    expect(log.load).toHaveLength(2);
    for (const row of log.load) {
      expect(row).toHaveLength(4);
      expect(row.reduce((p, q) => p + q, 0)).toBeCloseTo(1, 12);
    }
    // the balance loss is α·Σ P_i f_i with f_i = E·load_i: positive, near α·1 for a balanced router
    for (const a of log.aux) expect(a).toBeGreaterThan(0);
    expect(log.total).toBeCloseTo(log.loss + log.aux[0] + log.aux[1], 10);
  });

  it('label dropout sends the null class with the configured probability', () => {
    const seen = (p: number) => {
      const m = tinyModel();
      const tr = new Trainer(m, barsDataset(16), args({ batch: 16, microBatch: 16, labelDropout: p }));
      const spy = vi.spyOn(m, 'forwardTrain');
      for (let i = 0; i < 10; i++) tr.trainStep();
      let nul = 0;
      let all = 0;
      for (const call of spy.mock.calls) for (const v of Array.from(call[3] as ArrayLike<number>)) {
        all++;
        if (v === 4) nul++;
      }
      return nul / all;
    };
    expect(seen(0)).toBe(0);
    expect(seen(1)).toBe(1);
    const half = seen(0.5); // 160 draws: 0.5 ± 4σ (σ ≈ 0.04)
    expect(half).toBeGreaterThan(0.34);
    expect(half).toBeLessThan(0.66);
  });

  it('a non-finite loss stops with the step named, before any weight changes', () => {
    const m = tinyModel();
    const tr = new Trainer(m, barsDataset(), args());
    tr.trainStep();
    m.params.get('final_layer.linear.bias')[0] = NaN;
    const before = Float32Array.from(m.params.data);
    expect(() => tr.trainStep()).toThrow(/loss is NaN at step 2/);
    expect(tr.step).toBe(1);
    expect(tr.opt.step).toBe(1);
    const after = m.params.data;
    for (let i = 0; i < after.length; i++) expect(Object.is(after[i], before[i])).toBe(true);
  });

  it('rejects a batch larger than the data and a micro-batch that does not divide it', () => {
    expect(() => new Trainer(tinyModel(), barsDataset(8), args({ batch: 16, microBatch: 16 }))).toThrow(/batch 16 is larger than the data set \(8 images\)/);
    expect(() => new Trainer(tinyModel(), barsDataset(), args({ batch: 8, microBatch: 3 }))).toThrow(/not a multiple of the micro-batch 3/);
    expect(() => new Trainer(tinyModel(), barsDataset(), args({ objective: 'ddpm' }))).toThrow(/learn_sigma/);
  });

  it('learning-rate schedule: linear warm-up, then constant or cosine to the floor', () => {
    const c = { lr: 1e-3, schedule: 'cosine' as const, warmup: 10, minLr: 1e-4, steps: 110 };
    expect(learningRate(c, 0)).toBeCloseTo(1e-4, 15);
    expect(learningRate(c, 9)).toBeCloseTo(1e-3, 15);
    expect(learningRate(c, 10)).toBeCloseTo(1e-3, 15);
    expect(learningRate(c, 60)).toBeCloseTo(5.5e-4, 15); // half way: (1e-3 + 1e-4)/2
    expect(learningRate(c, 110)).toBeCloseTo(1e-4, 15);
    expect(learningRate({ ...c, schedule: 'constant' }, 100)).toBe(1e-3);
  });
});
