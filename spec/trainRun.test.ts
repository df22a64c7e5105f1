/**
 * A training run with its outputs (train/run.ts), the 1-NN evaluation (train/eval.ts) and the
 * `train` / `eval` commands: a non-finite loss stops the run naming the step and keeps the last
 * good checkpoint; bad input is one line, exit 2.
 */
import { describe, it, expect } from 'vitest';
import { runCli } from './runCli.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Trainer } from '../train/trainer.js';
import { runTraining, checkpointPath } from '../train/run.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { nearestNeighbours, evaluateSamples, generateSamples } from '../train/eval.js';
import { tinyModel, barsDataset, args } from './trainHelpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditmoe-run-'));
const outputs = (out: string) => ({ out, checkpointEvery: 2, sampleEvery: 0, samplesPerClass: 1, sampleSteps: 2, cfg: 2 });

describe('runTraining', () => {
  it('writes checkpoint, model, log, loss curve and samples', async () => {
    const out = path.join(tmp, 'ok');
    const tr = new Trainer(tinyModel(), barsDataset(), args({ steps: 3, ema: 0.9 }));
    const logs = await runTraining(tr, outputs(out), null);
    expect(logs.map((l) => l.step)).toEqual([1, 2, 3]);
    for (const f of ['checkpoint.safetensors', 'model.safetensors', 'log.jsonl', 'loss.png', 'samples/step-000003.png']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    expect(fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(readCheckpoint(checkpointPath(out)).step).toBe(3);
  });

  it('a clean stop (Ctrl-C, --time-limit) writes checkpoint and model at that step; resume finishes the run', async () => {
    const out = path.join(tmp, 'stop');
    const tr = new Trainer(tinyModel(), barsDataset(), args({ steps: 5, ema: 0.9 }));
    const logs = await runTraining(tr, { ...outputs(out), checkpointEvery: 0 }, null, { shouldStop: () => tr.step >= 2 });
    expect(logs).toHaveLength(2);
    expect(readCheckpoint(checkpointPath(out)).step).toBe(2);
    expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(true);
    const ck = readCheckpoint(checkpointPath(out));
    const again = new Trainer(tinyModel(), barsDataset(), ck.args);
    const all = await runTraining(again, { ...outputs(out), checkpointEvery: 0 }, { ck, file: checkpointPath(out) });
    expect(all.map((l) => l.step)).toEqual([1, 2, 3, 4, 5]); // the log continues the stopped run
    expect(readCheckpoint(checkpointPath(out)).step).toBe(5);
  });

  it('a NaN loss stops the run naming the step; the last good checkpoint stays', async () => {
    const out = path.join(tmp, 'nan');
    const m = tinyModel();
    const tr = new Trainer(m, barsDataset(), args({ steps: 6 }));
    let err: unknown;
    await runTraining(tr, outputs(out), null, {
      onStep: (l) => {
        if (l.step === 3) m.params.get('final_layer.linear.bias')[0] = NaN; // poisons step 4
      },
    }).catch((e) => (err = e));
    expect(String(err)).toMatch(/loss is NaN at step 4; .*the last good checkpoint \(step 2\) is .*checkpoint\.safetensors/);
    const ck = readCheckpoint(checkpointPath(out));
    expect(ck.step).toBe(2);
    expect(ck.params.data.every(Number.isFinite)).toBe(true);
  });
});

describe('1-NN evaluation', () => {
  it('real digits are their own neighbours: 100% accuracy at distance 0 (copying shows as 0)', () => {
    const ds = barsDataset(8);
    const r = evaluateSamples(ds.images.slice(0, 4 * 64), ds.labels.slice(0, 4), ds);
    expect(r.accuracy).toBe(1);
    expect(r.meanNNDistance).toBe(0);
  });
  it('finds the nearest image and its distance; wrong labels count as misses', () => {
    const ds = barsDataset(4); // bars in rows 0, 2, 4, 6
    const q = new Float32Array(64).fill(-1);
    for (let w = 0; w < 8; w++) q[3 * 8 + w] = 1; // a bar in row 3: equally far from rows 2 and 4 (distance √(2·8·4) = 8)
    q[2 * 8] = 1; // one pixel of row 2 lit: now nearest to class 1
    const nn = nearestNeighbours(q, 1, ds);
    expect(nn.index[0]).toBe(1);
    expect(nn.distance[0]).toBeCloseTo(Math.sqrt(7 * 4 + 8 * 4), 5);
    const r = evaluateSamples(q, new Int32Array([2]), ds, 0, 3);
    expect(r.accuracy).toBe(0);
    expect(r.perClass[2]).toBe(0);
    // yardstick: each bar image's nearest other bar differs in two rows of 8 pixels: √(16·4) = 8
    expect(r.realNNDistance).toBeCloseTo(8, 5);
  });
});

describe('generateSamples', () => {
  // DDPM ancestral draws fresh noise at every step: `eval --sampler ddpm` must get it from the seed
  it('runs DDPM ancestral sampling with step noise from the seed (same seed, same images)', () => {
    const m = tinyModel({ learn_sigma: true, class_dropout_prob: 0.1 });
    const draw = (seed: number) => generateSamples(m, [0, 1], 2, { objective: 'ddpm', steps: 4, cfg: 2, seed, solver: { sampler: 'ddpm' } }).images;
    const a = draw(0);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(draw(0)).toEqual(a);
    expect(draw(1)).not.toEqual(a);
    // the step noise matters: ancestral samples are not the deterministic DDIM ones from the same start
    const ddim = generateSamples(m, [0, 1], 2, { objective: 'ddpm', steps: 4, cfg: 2, seed: 0, solver: { sampler: 'ddim' } }).images;
    expect(ddim).not.toEqual(a);
  });
});

describe('train and eval commands', () => {
  const run = runCli;
  const bad = (r: ReturnType<typeof run>, frag: string) => {
    expect(r.code, r.err).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(frag);
  };
  it('trains, resumes, evaluates; refuses bad input with one line', () => {
    const out = path.join(tmp, 'cli');
    const base = ['train', '--preset', 'mnist-tiny', '--batch', '8', '--backend', 'ref', '--sample-every', '0', '--samples-per-class', '1', '--sample-steps', '2', '--out', out];
    const r1 = run(...base, '--steps', '2');
    expect(r1.code, r1.err).toBe(0);
    bad(run(...base, '--steps', '3'), 'continue it with --resume');
    bad(run(...base, '--steps', '3', '--resume', '--preset', 'mnist-xs'), 'another model configuration');
    bad(run(...base, '--steps', '3', '--resume', '--lr', '0.1'), 'was trained with lr = 0.0003');
    const r2 = run(...base, '--steps', '3', '--resume');
    expect(r2.code, r2.err).toBe(0);
    expect(r2.out).toContain('step 3');
    bad(run('train', '--preset', 'mnist-tiny', '--batch', '20000', '--backend', 'ref', '--out', path.join(tmp, 'big')), 'batch 20000 is larger than the data set (10000 images)');
    bad(run('train', '--data', path.join(tmp, 'none.safetensors'), '--backend', 'ref', '--out', path.join(tmp, 'x')), 'no such file');
    const ev = run('eval', '--model', path.join(out, 'model.safetensors'), '--samples', '10', '--steps', '2', '--backend', 'ref', '--json');
    expect(ev.code, ev.err).toBe(0);
    const rep = JSON.parse(ev.out) as { accuracy: number; samples: number; meanNNDistance: number };
    expect(rep.samples).toBe(10);
    expect(rep.accuracy).toBeGreaterThanOrEqual(0);
    expect(rep.meanNNDistance).toBeGreaterThan(0);
    bad(run('eval', '--model', path.join(out, 'model.safetensors'), '--samples', '15', '--backend', 'ref'), 'not a positive multiple of the 10 classes');
  });
});
