/**
 * Golden: two AdamW steps (torch.optim.AdamW) from the initial tiny model weights, both with
 * the DDPM gradients `grad.<param>` of golden/tiny.train; `adamw2.<param>` are PyTorch's
 * parameters afterwards, hyper-parameters in `__metadata__.adamw`. Tolerance 1e-6 relative to
 * max(1, max|golden|): the update is a few float32 operations per element (PyTorch rounds each,
 * we round once), so the difference is a few ulps of values of order 1.
 * Plus the EMA's decay rule and update against hand-computed values.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { golden, gt, expectClose, GOLDEN_DIR } from './golden.js';
import { asFloat32 } from '../io/safetensors.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { AdamW } from '../train/adamw.js';
import { Ema } from '../train/ema.js';
import { ParamStore } from '../ref/params.js';

describe('AdamW golden', () => {
  it('two steps match torch.optim.AdamW (adamw2.*)', () => {
    const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.safetensors'))), 'tiny');
    const g = golden('tiny.train.safetensors');
    const hp = JSON.parse(g.metadata.adamw) as { lr: number; betas: [number, number]; eps: number; weight_decay: number; steps: number };
    expect(hp.steps).toBe(2);
    const grads = model.params.zerosLike();
    for (const s of model.params.specs) if (s.trainable) grads.get(s.name).set(asFloat32(gt(g, `grad.${s.name}`)));
    const posBefore = Float32Array.from(model.params.get('pos_embed'));
    grads.get('pos_embed').fill(1); // a non-trainable parameter must not move whatever its "gradient"
    const opt = new AdamW(model.params, { lr: hp.lr, beta1: hp.betas[0], beta2: hp.betas[1], eps: hp.eps, weightDecay: hp.weight_decay });
    opt.update(grads);
    opt.update(grads);
    let checked = 0;
    for (const s of model.params.specs) {
      if (!s.trainable) continue;
      expectClose(`adamw2.${s.name}`, model.params.get(s.name), gt(g, `adamw2.${s.name}`), 1e-6);
      checked++;
    }
    expect(checked).toBe(55);
    expect(model.params.get('pos_embed')).toEqual(posBefore);
    expect(opt.step).toBe(2);
  });

  it('rejects a gradient buffer of another layout', () => {
    const p = new ParamStore([{ name: 'a', shape: [3], trainable: true }]);
    const opt = new AdamW(p, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    expect(() => opt.update(new ParamStore([{ name: 'a', shape: [4], trainable: true }]))).toThrow(/gradient buffer has 4 elements/);
  });
});

describe('EMA', () => {
  it('decays with min(decay, (1+s)/(10+s)) under warm-up, plain decay without', () => {
    const p = new ParamStore([{ name: 'w', shape: [2], trainable: true }]);
    p.data.set([1, -2]);
    const warm = new Ema(p, 0.999, true);
    const plain = new Ema(p, 0.999, false);
    expect(warm.currentDecay()).toBeCloseTo(0.1, 12); // (1+0)/(10+0)
    p.data.set([3, 4]);
    warm.update(p); // 0.1·1 + 0.9·3 = 2.8; 0.1·(−2) + 0.9·4 = 3.4
    plain.update(p); // 0.999·1 + 0.001·3 = 1.002
    expect(warm.shadow[0]).toBeCloseTo(2.8, 5);
    expect(warm.shadow[1]).toBeCloseTo(3.4, 5);
    expect(plain.shadow[0]).toBeCloseTo(1.002, 6);
    expect(warm.currentDecay()).toBeCloseTo(2 / 11, 12);
    for (let i = 0; i < 20000; i++) warm.update(p);
    expect(warm.currentDecay()).toBe(0.999); // the cap
  });
});
