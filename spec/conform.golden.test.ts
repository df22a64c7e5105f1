/**
 * Every golden case through the conformance harness, on every backend: the outputs of
 * `dit-moe conform` must pass `dit-moe compare` against the official tensors, with the
 * default tolerances of conform/compare.ts (2e-4 for a forward, 1e-3 for gradients and
 * 10-step sampling loops, 1e-12 for float64 schedules, exact for indices).
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { golden, GOLDEN_DIR } from './golden.js';
import { backends } from './backends.js';
import { runCase, compareTensors, formatCompareLine } from '../conform/index.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';

const cases: [string, string][] = [
  ['tiny.forward.safetensors', 'tiny.model.safetensors'],
  ['tiny_flash.forward.safetensors', 'tiny_flash.model.safetensors'],
  ['tiny.moe_layer.safetensors', ''],
  ['tiny.schedule.safetensors', ''],
  ['tiny.sample.safetensors', 'tiny.model.safetensors'],
  ['tiny.solvers.safetensors', 'tiny.model.safetensors'],
  ['tiny.train.safetensors', 'tiny.model.safetensors'],
];

describe.each(backends())('conformance cases [%s]', (_name, kernels) => {
  it.each(cases)('%s', (kase, modelFile) => {
    const g = golden(kase);
    const outs = runCase(g, {
      kernels,
      where: kase,
      model: () => loadModelFromSafetensors(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, modelFile))), modelFile, kernels),
    });
    const lines = compareTensors({ tensors: outs, metadata: {} }, g);
    const bad = lines.filter((l) => l.status !== 'pass');
    expect(bad.map(formatCompareLine)).toEqual([]);
    expect(lines.length).toBeGreaterThan(0);
  });
});
