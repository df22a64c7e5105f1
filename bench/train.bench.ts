/**
 * Training speed: optimiser steps per second of the CPU-training anchor of issue 4 (DiT-MoE
 * hidden 128, depth 4, 4 heads, 8 experts top-2, mlp_ratio 2, 2 shared experts, patch 4 on
 * 28×28×1 digits, rectified flow, batch 128 — train/presets.ts `mnist-s`; the official PyTorch
 * code runs it at about 0.75 steps/s on 2 threads), per backend. One full Trainer step: batch,
 * noise, forward, backward, AdamW, EMA. Before timing, each backend's gradients of one small
 * batch are checked against ref (1e-3 relative to the largest).
 * Run: node dist/bench/train.bench.js [--backends ref,wasm,wasm2] [--steps 3] [--batch 128] [--preset mnist-s]
 * (wasm2: the wasm backend on two threads)
 */
import { DiTModel } from '../ref/model.js';
import { initializeWeights } from '../ref/init.js';
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import { makeRng } from '../ref/diffusion/rng.js';
import { Trainer, DEFAULT_TRAIN_ARGS } from '../train/trainer.js';
import { trainPresetConfig } from '../train/presets.js';
import { loadMnist } from '../train/data.js';
import { ceilings } from './calibration.js';

export const title = 'Training steps/s (mnist-s: the CPU-training anchor, batch 128, rectified flow)';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

async function availableBackends(names: string[], log: (s: string) => void): Promise<[string, Kernels][]> {
  const out: [string, Kernels][] = [];
  for (const n of names) {
    if (n === 'ref') out.push(['ref', refKernels]);
    else if (/^wasm\d*$/.test(n)) {
      // 'wasm' = one thread, 'wasm2' = two threads, ...
      const threads = n === 'wasm' ? 1 : Number(n.slice(4));
      try {
        const mod = await import('../wasm/node.js');
        out.push([n, await mod.createWasmKernels({ threads })]);
      } catch (e) {
        log(`${n} backend unavailable: ${(e as Error).message}`);
      }
    }
  }
  return out;
}

/** The model with the official initialisation, adaLN and final layer made non-zero so no work is skipped. */
function anchorModel(preset: string, kernels: Kernels): DiTModel {
  const c = trainPresetConfig(preset, 'flow');
  const params = initializeWeights(c, 0);
  const rng = makeRng(1);
  for (const s of params.specs) if (/adaLN|final_layer/.test(s.name)) params.get(s.name).forEach((_, i, a) => (a[i] = (rng.uniform() - 0.5) * 0.02));
  return new DiTModel(c, params, kernels);
}

export async function run(log: (line: string) => void = console.log): Promise<string> {
  const preset = arg('preset', 'mnist-s');
  const steps = Number(arg('steps', '3'));
  const batch = Number(arg('batch', '128'));
  const backends = await availableBackends(arg('backends', 'ref,wasm,wasm2').split(','), log);
  const data = loadMnist();
  const args = { ...DEFAULT_TRAIN_ARGS, batch, microBatch: batch, steps: steps + 1, lr: 3e-4 };

  // validation: one step's gradients of a batch of 8 against ref
  let refGrad: Float32Array | null = null;
  for (const [name, k] of [['ref', refKernels] as [string, Kernels], ...backends.filter(([n]) => n !== 'ref')]) {
    const tr = new Trainer(anchorModel(preset, k), data, { ...args, batch: 8, microBatch: 8 });
    tr.trainStep();
    if (!refGrad) refGrad = Float32Array.from(tr.grads.data);
    else {
      let err = 0;
      let scale = 0;
      for (let i = 0; i < refGrad.length; i++) {
        err = Math.max(err, Math.abs(tr.grads.data[i] - refGrad[i]));
        scale = Math.max(scale, Math.abs(refGrad[i]));
      }
      if (!(err <= 1e-3 * scale)) throw new Error(`${name} gradients differ from ref by ${(err / scale).toExponential(2)} of the largest`);
      log(`${name}: gradients of one step (batch 8) within ${(err / scale).toExponential(2)} of ref's largest`);
    }
  }

  // the ceilings of this machine at this moment, before and after the timing (bench/calibration.ts)
  const { createWasmKernels } = await import('../wasm/node.js');
  const calib = await createWasmKernels();
  const measureCeilings = await ceilings(calib);
  const ceiling = () => {
    const c = measureCeilings();
    return `L1 micro-kernel ${c.l1.toFixed(1)} GFLOP/s, register peak ${c.reg.toFixed(1)} GFLOP/s`;
  };
  const before = ceiling();
  const rows = ['| backend | s/step | steps/s | vs official PyTorch (0.75 steps/s) |', '|---|---|---|---|'];
  for (const [name, k] of backends) {
    const tr = new Trainer(anchorModel(preset, k), data, args);
    tr.trainStep(); // warm-up: JIT tiers, packed weights, arena growth
    const times: number[] = [];
    for (let i = 0; i < steps; i++) times.push(tr.trainStep().seconds);
    const mean = times.reduce((p, q) => p + q, 0) / times.length;
    const best = Math.min(...times);
    log(`${name}: ${mean.toFixed(2)} s/step (best ${best.toFixed(2)}), ${(1 / mean).toFixed(3)} steps/s over ${steps} steps of batch ${batch}`);
    rows.push(`| ${name} | ${mean.toFixed(2)} (best ${best.toFixed(2)}) | ${(1 / mean).toFixed(3)} | ${(1 / mean / 0.75).toFixed(2)}× |`);
  }
  for (const [, k] of backends) (k as { dispose?: () => void }).dispose?.();
  rows.push('');
  rows.push(`${preset}, batch ${batch}, ${steps} timed steps after one warm-up step, one process on the shared 2-core machine (other jobs running make these figures lower).`);
  rows.push('', `Ceilings in this run: ${before} before the table; ${ceiling()} after.`);
  return rows.join('\n');
}

if (process.argv[1]?.endsWith('train.bench.js')) {
  run().then((t) => console.log(t));
}
