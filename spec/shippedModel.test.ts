/**
 * The shipped checkpoint (models/mnist-s.safetensors, trained by `dit-moe train` in 55 minutes
 * on both cores of this kind of machine; docs/training.md) still draws digits: class-conditional
 * samples, labelled by their nearest real MNIST digit, carry the requested class.
 * Measured at release (100 samples, guidance 2, DPM-Solver++ 2M with 10 steps): 99% 1-NN
 * accuracy, mean nearest-neighbour distance 9.75; these 50 samples: 50 of 50. This check draws 50
 * samples with the same solver and asks for 94% (at most 3 misses): 50 samples at a true 99%
 * miss 4 or more with probability 1.6e-3 (a retrained model of the same quality passes), while
 * the model it replaced (82–90% at these settings, 45 of these 50) fails. The distance must stay
 * within [yardstick − 1, 12]: not copies of training digits (real digits to their nearest other
 * real digit: 9.08), not noise (~32).
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GOLDEN_DIR } from './golden.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { backends } from './backends.js';
import { generateSamples, evaluateSamples } from '../train/eval.js';
import { loadMnist } from '../train/data.js';

const file = path.join(GOLDEN_DIR, '..', 'models', 'mnist-s.safetensors');

describe('the shipped MNIST model', () => {
  it('samples digits of the requested class in 10 solver steps (1-NN over the MNIST pixels)', () => {
    const wasm = backends().find(([n]) => n === 'wasm')![1];
    const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(file)), file, wasm);
    expect(model.config.num_classes).toBe(10);
    const { images, labels } = generateSamples(model, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 5, { objective: 'flow', steps: 10, cfg: 2, seed: 0, solver: { sampler: 'dpm++2m' } });
    const mnist = loadMnist();
    const report = evaluateSamples(images, labels, mnist);
    expect(report.accuracy).toBeGreaterThanOrEqual(0.94);
    expect(report.meanNNDistance).toBeGreaterThan(report.realNNDistance - 1);
    expect(report.meanNNDistance).toBeLessThan(12);
  });
});
