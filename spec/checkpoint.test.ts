/**
 * Checkpoints: resuming from a checkpoint written mid-run gives bit for bit the weights, EMA
 * and optimiser moments of an uninterrupted run with the same seed (tiny model, ref backend);
 * the file loads as a model by its official names; a checkpoint of another configuration, or a
 * file that is not a checkpoint, is refused with the reason.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Trainer } from '../train/trainer.js';
import { writeCheckpoint, readCheckpoint, restoreTrainer, serializeModel } from '../train/checkpoint.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { serializeSafetensors, f32 } from '../io/safetensors.js';
import { tinyModel, barsDataset, args, bitsEqual } from './trainHelpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditmoe-ck-'));

describe('checkpoint and resume', () => {
  it('resume after 3 of 6 steps = the uninterrupted run, bit for bit (weights, EMA, moments)', () => {
    const a = args({ steps: 6, ema: 0.99, schedule: 'cosine', warmup: 2, clipGrad: 1, weightDecay: 0.01, batch: 8, microBatch: 4 });
    const whole = new Trainer(tinyModel(), barsDataset(12), a); // 12 images, batch 8: batches straddle epochs
    for (let i = 0; i < 6; i++) whole.trainStep();

    const first = new Trainer(tinyModel(), barsDataset(12), a);
    for (let i = 0; i < 3; i++) first.trainStep();
    const file = path.join(tmp, 'ck.safetensors');
    writeCheckpoint(file, first);
    for (let i = 0; i < 2; i++) first.trainStep(); // the "killed" run went on a little; it must not matter

    const ck = readCheckpoint(file);
    expect(ck.step).toBe(3);
    const resumed = new Trainer(tinyModel({}, 99), barsDataset(12), ck.args); // other initial weights: all overwritten
    restoreTrainer(resumed, ck, file);
    for (let i = 0; i < 3; i++) resumed.trainStep();

    expect(resumed.step).toBe(6);
    expect(bitsEqual(resumed.model.params.data, whole.model.params.data)).toBe(true);
    expect(bitsEqual(resumed.ema!.shadow, whole.ema!.shadow)).toBe(true);
    expect(bitsEqual(resumed.opt.m.data, whole.opt.m.data)).toBe(true);
    expect(bitsEqual(resumed.opt.v.data, whole.opt.v.data)).toBe(true);
    // and the run really moved: a resume that lost the state would not match
    expect(bitsEqual(whole.model.params.data, tinyModel().params.data)).toBe(false);
  });

  it('a checkpoint is a model file: the official names load, the extra state is reported', () => {
    const tr = new Trainer(tinyModel(), barsDataset(), args({ ema: 0.9 }));
    tr.trainStep();
    const file = path.join(tmp, 'ck2.safetensors');
    writeCheckpoint(file, tr);
    const m = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(file)), file);
    expect(bitsEqual(m.params.data, tr.model.params.data)).toBe(true);
    const emaModel = loadModelFromSafetensors(serializeModel(tr, true), 'ema');
    expect(bitsEqual(emaModel.params.data, tr.ema!.shadow)).toBe(true);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]); // the temporary file was renamed
  });

  it('refuses a checkpoint of another configuration, naming the field', () => {
    const tr = new Trainer(tinyModel(), barsDataset(), args());
    tr.trainStep();
    const file = path.join(tmp, 'ck3.safetensors');
    writeCheckpoint(file, tr);
    const other = new Trainer(tinyModel({ num_experts: 8 }), barsDataset(), args());
    expect(() => restoreTrainer(other, readCheckpoint(file), file)).toThrow(/another model configuration \(num_experts: 4 in the checkpoint, 8 requested\)/);
  });

  it('refuses files that are not checkpoints', () => {
    const plain = path.join(tmp, 'weights.safetensors');
    fs.writeFileSync(plain, serializeSafetensors([['x', f32([1], new Float32Array([1]))]], { config: '{}' }));
    expect(() => readCheckpoint(plain)).toThrow(/is not a training checkpoint/);
    expect(() => readCheckpoint(path.join(tmp, 'nope.safetensors'))).toThrow(/no such file/);
    const model = path.join(tmp, 'model.safetensors');
    const tr = new Trainer(tinyModel(), barsDataset(), args());
    fs.writeFileSync(model, serializeModel(tr, false));
    expect(() => readCheckpoint(model)).toThrow(/is not a training checkpoint/);
  });
});
