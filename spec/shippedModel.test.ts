/**
 * The shipped checkpoint (models/mnist-s.safetensors, trained by `dit-moe train` in 57 minutes
 * on this kind of machine; docs/training.md) still draws digits: class-conditional
 * samples, labelled by their nearest real MNIST digit, carry the requested class.
 * Measured at release: 92% of 100 samples (50 Euler steps, guidance 4). This check draws 50
 * samples with 25 steps to stay fast, and asks for 75%: well above chance (10%) and the
 * untrained model (~10–20%), with room for the smaller sample and fewer steps.
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
  it('samples digits of the requested class (1-NN over the MNIST pixels)', () => {
    const wasm = backends().find(([n]) => n === 'wasm')![1];
    const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(file)), file, wasm);
    expect(model.config.num_classes).toBe(10);
    const { images, labels } = generateSamples(model, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 5, { objective: 'flow', steps: 25, cfg: 4, seed: 0 });
    const report = evaluateSamples(images, labels, loadMnist());
    expect(report.accuracy).toBeGreaterThanOrEqual(0.75);
    // not copies of training digits, not noise (real digits to their nearest other: ~9.1; noise ~32)
    expect(report.meanNNDistance).toBeGreaterThan(8);
    expect(report.meanNNDistance).toBeLessThan(16);
  });
});
