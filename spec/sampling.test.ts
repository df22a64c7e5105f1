/**
 * The one sampling setup (ref/diffusion/sampling.ts) and the new samplers on the command line:
 * every sampler makes the model evaluations its table promises, bad combinations are one-line
 * errors naming the flag (exit 2 on the command line, no output file), and each new sampler
 * runs end to end from `dit-moe sample`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GOLDEN_DIR } from './golden.js';
import { runCli } from './runCli.js';
import { expectOurError } from './errors.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { SAMPLERS, checkSampler, modelEvaluations, sampleWith, type SamplerName, type SamplerSetup } from '../ref/diffusion/sampling.js';
import type { DiffusionModelFn } from '../ref/diffusion/samplers.js';
import { makeRng } from '../ref/diffusion/rng.js';

describe('sampleWith', () => {
  // a stub with learned-sigma shape (2C output channels): a contraction towards 0.1·y
  const C = 2;
  const HW = 4;
  const calls: number[] = [];
  const model: DiffusionModelFn = (x, shape, _t, y) => {
    calls.push(shape[0]);
    const N = shape[0];
    const out = new Float32Array(N * 2 * C * HW);
    for (let n = 0; n < N; n++) for (let i = 0; i < 2 * C * HW; i++) out[n * 2 * C * HW + i] = 0.5 * x[n * C * HW + (i % (C * HW))] - 0.1 * y[n];
    return out;
  };
  const z = makeRng(3).fillNormal(new Float32Array(2 * C * HW));
  const io = { model, z, shape: [2, C, 2, 2], y: Int32Array.of(1, 2), noise: makeRng(4) };
  const guidance = { scale: 2, nullClass: 5, channels: 'all' as const };

  it.each(SAMPLERS.map((s) => [s]))('%s makes modelEvaluations() evaluations, each one pass (doubled batch) or two (flow)', (sampler: SamplerName) => {
    const steps = 5;
    for (const objective of ['ddpm', 'flow'] as const) {
      const setup: SamplerSetup = { sampler, steps, guidance };
      try {
        checkSampler(setup, objective);
      } catch {
        continue; // not a sampler of this objective
      }
      calls.length = 0;
      const x = sampleWith(setup, { ...io, objective });
      expect(x.every(Number.isFinite)).toBe(true);
      const passes = sampler === 'flow' || sampler === 'heun' || (objective === 'flow' && sampler.startsWith('dpm++')) ? 2 : 1;
      expect(calls.length).toBe(modelEvaluations(setup) * passes);
      expect(calls.every((n) => n === (passes === 2 ? 2 : 4))).toBe(true);
    }
  });

  it('bad setups are one-line errors naming the flag', () => {
    expectOurError(() => checkSampler({ sampler: 'euler' as SamplerName, steps: 5 }), '--sampler', "unknown sampler 'euler'");
    expectOurError(() => checkSampler({ sampler: 'dpm++3m', steps: 2 }), '--steps', 'order 3 needs at least 3 steps');
    expectOurError(() => checkSampler({ sampler: 'dpm++2m', steps: 5, order: 4 }), '--order');
    expectOurError(() => checkSampler({ sampler: 'dpm++2m', steps: 5, spacing: 'karras' as never }), '--spacing', "unknown time spacing 'karras'");
    expectOurError(() => checkSampler({ sampler: 'flow', steps: 5, order: 2 }), '--order', 'not flow');
    expectOurError(() => checkSampler({ sampler: 'heun', steps: 5, spacing: 'logSNR' }), '--spacing');
    expectOurError(() => checkSampler({ sampler: 'ddim', steps: 5, lowerOrderFinal: false }), '--lower-order-final');
    expectOurError(() => checkSampler({ sampler: 'dpm2s', steps: 5 }, 'flow'), '--sampler', 'dpm2s needs a noise-predicting (DDPM) model', 'use flow, heun, dpm++2m, dpm++3m');
    expectOurError(() => checkSampler({ sampler: 'ddim', steps: 5 }, 'flow'), '--sampler');
    expectOurError(() => checkSampler({ sampler: 'heun', steps: 5 }, 'ddpm'), '--sampler', 'heun needs a rectified-flow velocity model', 'use ddpm, ddim, dpm++2m, dpm++3m, dpm2s');
    expectOurError(() => checkSampler({ sampler: 'dpm++2m', steps: 5, spacing: 'logSNR' }, 'flow'), '--spacing');
    expect(() => checkSampler({ sampler: 'dpm++3m', steps: 3, spacing: 'logSNR', lowerOrderFinal: false }, 'ddpm')).not.toThrow();
  });
});

describe('dit-moe sample with the fast samplers', () => {
  let dir: string;
  let ddpmModel: string;
  const G = (f: string) => path.join(GOLDEN_DIR, f);
  const shipped = path.join(GOLDEN_DIR, '..', 'models', 'mnist-s.safetensors');
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-solvers-'));
    // the tiny model marked as trained with the DDPM objective
    const g = parseSafetensors(new Uint8Array(fs.readFileSync(G('tiny.model.safetensors'))), 'tiny');
    ddpmModel = path.join(dir, 'tiny-ddpm.safetensors');
    fs.writeFileSync(ddpmModel, serializeSafetensors([...g.tensors.entries()], { ...g.metadata, objective: 'ddpm' }));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const outs = () => fs.readdirSync(dir).filter((f) => f.startsWith('out') || f.startsWith('.'));
  const bad = (r: ReturnType<typeof runCli>, ...fragments: string[]) => {
    expect(r.code, r.err).toBe(2);
    expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
    for (const f of fragments) expect(r.err).toContain(f);
  };

  it('dpm++2m, dpm++3m (logSNR), dpm2s on a DDPM model and heun, dpm++2m on the shipped flow write their samples', () => {
    const runs: string[][] = [
      ['--model', ddpmModel, '--sampler', 'dpm++2m', '--steps', '4'],
      ['--model', ddpmModel, '--sampler', 'dpm++3m', '--steps', '4', '--spacing', 'logSNR', '--lower-order-final', 'off'],
      ['--model', ddpmModel, '--sampler', 'dpm2s', '--steps', '4', '--order', '3'],
      ['--model', shipped, '--sampler', 'heun', '--steps', '3'],
      ['--model', shipped, '--sampler', 'dpm++2m', '--steps', '3'],
    ];
    runs.forEach((args, i) => {
      const out = path.join(dir, `out${i}.safetensors`);
      const r = runCli('sample', ...args, '--count', '2', '--cfg', '2', '--backend', 'wasm', '--threads', '1', '--out', out);
      expect(r.code, r.err).toBe(0);
      const s = parseSafetensors(new Uint8Array(fs.readFileSync(out)), out).tensors.get('samples')!;
      expect(new Float32Array(s.data.buffer, s.data.byteOffset, s.data.byteLength / 4).every(Number.isFinite)).toBe(true);
      fs.rmSync(out);
    });
  });

  it('bad input: one line naming the flag, exit 2, no output file', () => {
    const out = ['--out', path.join(dir, 'out.png'), '--backend', 'ref', '--count', '1'];
    bad(runCli('sample', '--model', ddpmModel, '--sampler', 'dpm++4m', ...out), '--sampler', "unknown sampler 'dpm++4m'");
    bad(runCli('sample', '--model', ddpmModel, '--sampler', 'dpm++3m', '--steps', '2', ...out), '--steps', 'order 3 needs at least 3 steps, got 2');
    bad(runCli('sample', '--model', ddpmModel, '--sampler', 'dpm++2m', '--order', '5', ...out), '--order');
    bad(runCli('sample', '--model', ddpmModel, '--sampler', 'dpm++2m', '--spacing', 'karras', ...out), '--spacing');
    bad(runCli('sample', '--model', ddpmModel, '--sampler', 'dpm++2m', '--lower-order-final', 'maybe', ...out), '--lower-order-final');
    bad(runCli('sample', '--model', ddpmModel, '--sampler', 'heun', ...out), '--sampler', 'heun needs a rectified-flow velocity model');
    bad(runCli('sample', '--model', shipped, '--sampler', 'dpm2s', ...out), '--sampler', 'dpm2s needs a noise-predicting (DDPM) model');
    bad(runCli('sample', '--model', shipped, '--sampler', 'flow', '--order', '2', ...out), '--order');
    expect(outs()).toEqual([]);
  });
});

describe('the fast samplers on the shipped rectified-flow model', () => {
  it('at the same number of evaluations, DPM-Solver++ 2M and Heun land nearer the converged samples than Euler', async () => {
    // 10 digits (one per class), guidance 2, the median over the digits of the per-digit RMS (a digit
    // that flips to another shape between two solvers would dominate a mean of few); "converged" =
    // Heun with 20 steps (39 evaluations; its own error is ~1/5 of Euler's at 10 steps by the
    // docs/solvers.md table). The table's RMS over 100 digits (pixels in
    // [−1, 1]): Euler 10: 0.065, DPM-Solver++ 2M 10: 0.043; Euler 15: 0.047, Heun 8 (15 evaluations):
    // 0.031. We ask only for the order.
    const { loadModelFromSafetensors } = await import('../io/modelFile.js');
    const { backends } = await import('./backends.js');
    const wasm = backends().find(([n]) => n === 'wasm')![1];
    const file = path.join(GOLDEN_DIR, '..', 'models', 'mnist-s.safetensors');
    const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(file)), file, wasm);
    const N = 10;
    const y = Int32Array.from({ length: N }, (_, i) => i);
    const z = makeRng(11).fillNormal(new Float32Array(N * 28 * 28));
    const io = { model: ((x, s, t, yy) => model.forward(x, s, t, yy)) as DiffusionModelFn, z, shape: [N, 1, 28, 28], y, objective: 'flow' as const };
    const guidance = { scale: 2, nullClass: 10, channels: 'all' as const };
    const run = (sampler: SamplerName, steps: number) => sampleWith({ sampler, steps, guidance }, io);
    const ref = run('heun', 20);
    const P = 28 * 28;
    const rms = (x: Float32Array) => {
      const per = Array.from({ length: N }, (_, n) => Math.sqrt(x.subarray(n * P, (n + 1) * P).reduce((s, v, i) => s + (v - ref[n * P + i]) ** 2, 0) / P));
      per.sort((a, b) => a - b);
      return (per[N / 2 - 1] + per[N / 2]) / 2;
    };
    const euler = rms(run('flow', 10));
    const dpm = rms(run('dpm++2m', 10));
    const heun = rms(run('heun', 8));
    const euler15 = rms(run('flow', 15));
    const dpm1 = rms(sampleWith({ sampler: 'dpm++2m', order: 1, steps: 10, guidance }, io));
    console.log(`RMS to Heun 20: Euler 10 ${euler.toFixed(4)}, DPM-Solver++ 2M 10 ${dpm.toFixed(4)} (order 1: ${dpm1.toFixed(4)}), Heun 8 ${heun.toFixed(4)} (Euler 15: ${euler15.toFixed(4)})`);
    expect(dpm).toBeLessThan(euler);
    expect(heun).toBeLessThan(euler15);
    // DPM-Solver++(1) on a flow is Euler: x_t = (t/s)·x + ((s − t)/s)·(x − s·v) = x − (s − t)·v
    expect(Math.abs(dpm1 - euler)).toBeLessThan(1e-4);
  });
});
