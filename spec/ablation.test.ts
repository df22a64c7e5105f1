/**
 * Router ablations (analysis/ablation.ts) on the tiny golden model, ref backend: an expert
 * switched off in layer l is never chosen there and scores exactly 0, the layers before l route
 * as before, the output changes; nothing off with the model's k is the model itself; another k
 * routes k experts per token; impossible ablations are errors naming the layer.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GOLDEN_DIR } from './golden.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { refKernels } from '../ref/refKernels.js';
import { makeRng } from '../ref/diffusion/rng.js';
import { ablatedModel } from '../analysis/ablation.js';
import type { DiTModel } from '../ref/model.js';

const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.safetensors'))), 'tiny', refKernels);
const c = model.config; // depth 2, 4 experts, k = 2, 16 tokens per image
const shape = [2, c.in_channels, c.input_size, c.input_size];
const x = makeRng(3).fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)));

function run(m: DiTModel): { out: Float32Array; trace: Map<string, Float32Array | Int32Array> } {
  const trace = new Map<string, Float32Array | Int32Array>();
  const out = m.forward(x, shape, [10, 500], [1, 7], (name, data) => trace.set(name, name.endsWith('topk_idx') ? Int32Array.from(data) : Float32Array.from(data)));
  return { out: Float32Array.from(out), trace };
}

describe('router ablation', () => {
  const base = run(model);

  it('an expert off in layer 1: never chosen there, score 0, layer 0 unchanged, another output', () => {
    const r = run(ablatedModel(model, { off: [[], [2]] }));
    const idx = r.trace.get('block1.topk_idx') as Int32Array;
    const scores = r.trace.get('block1.router_scores') as Float32Array;
    expect(idx.length).toBe(2 * 16 * 2);
    expect([...idx].includes(2)).toBe(false);
    expect([...(base.trace.get('block1.topk_idx') as Int32Array)].includes(2)).toBe(true); // it was chosen before
    for (let m = 0; m < 32; m++) expect(scores[m * 4 + 2]).toBe(0);
    expect(r.trace.get('block0.topk_idx')).toEqual(base.trace.get('block0.topk_idx'));
    expect(r.out).not.toEqual(base.out);
  });

  it('nothing off and the model\'s k is the model itself; another k routes k experts per token', () => {
    expect(ablatedModel(model, { off: [[], []] })).toBe(model);
    const r = run(ablatedModel(model, { off: [], k: 1 }));
    expect((r.trace.get('block0.topk_idx') as Int32Array).length).toBe(32);
    expect(r.out).not.toEqual(base.out);
  });

  it('impossible ablations are errors naming the layer', () => {
    expect(() => ablatedModel(model, { off: [[0, 1, 2]] })).toThrow(/layer 0: 1 expert\(s\) left on, fewer than k = 2/);
    expect(() => ablatedModel(model, { off: [[], [4]] })).toThrow(/layer 1: expert 4 is not one of 0..3/);
    expect(() => ablatedModel(model, { off: [], k: 5 })).toThrow(/k = 5/);
  });
});
