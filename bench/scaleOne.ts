/**
 * One model of bench/scale.bench.ts, in its own process (so its peak resident memory is its own):
 *   node dist/bench/scaleOne.js FILE PRESET EXPERTS [BUDGET_GB]
 * prints one JSON line: time to open, two forwards (SCALE_FORWARDS=1: one) (batch 2 at 32×32×4, wasm on 2 threads),
 * time waiting for the disk in each, peak RSS, and the GEMM rate measured in this process.
 */
import { presetConfig } from '../ref/config.js';
import { accounting } from '../ref/accounting.js';
import { createWasmKernels } from '../wasm/node.js';
import { loadModelWithMetadata } from '../cli/loadModel.js';
import type { FileWeights } from '../io/weightStore.js';

const [file, preset, experts, budget] = process.argv.slice(2);
const config = presetConfig(preset, { num_experts: Number(experts) });
const kernels = await createWasmKernels({ threads: 2 });

/** GFLOP/s of the wasm GEMM on this model's largest product shape (an expert's up projection over 128 rows), best of 3. */
function gemmRate(): number {
  const D = config.hidden_size;
  const F = Math.round(config.mlp_ratio * D);
  const M = 128;
  const x = new Float32Array(M * D).fill(0.01);
  const w = new Float32Array(F * D).fill(0.02);
  const out = new Float32Array(M * F);
  kernels.linear(out, x, w, null, M, D, F); // packs w
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) kernels.linear(out, x, w, null, M, D, F);
    best = Math.min(best, (performance.now() - t0) / 5);
  }
  kernels.weightsChanged();
  return (2 * M * D * F) / best / 1e6;
}

const rateBefore = gemmRate();
const notes: string[] = [];
const t0 = performance.now();
const { model } = await loadModelWithMetadata(file, kernels, { preset, config: JSON.stringify({ num_experts: Number(experts) }), memoryBudget: budget ? Number(budget) : undefined, note: (l) => notes.push(l), progress: null });
const openMs = performance.now() - t0;
const store = model.weights as FileWeights;
const N = 2;
const shape = [N, 4, 32, 32];
const x = Float32Array.from({ length: N * 4 * 32 * 32 }, (_, i) => Math.sin(i));
const forwards: { ms: number; waitMs: number }[] = [];
for (let i = 0; i < Number(process.env.SCALE_FORWARDS ?? 2); i++) {
  const w0 = store.waitMs;
  const f0 = performance.now();
  const out = model.forward(x, shape, [500, 500], [1, 1000]);
  if (!out.every(Number.isFinite)) throw new Error('forward gave non-finite values');
  forwards.push({ ms: performance.now() - f0, waitMs: store.waitMs - w0 });
}
const rateAfter = gemmRate();
const a = accounting(config);
const flops = 2 * N * (a.linearMacs + a.attentionMacs);
process.stdout.write(JSON.stringify({ openMs, forwards, maxRssKB: process.resourceUsage().maxRSS, gemmGflops: [rateBefore, rateAfter], flops, resident: store.resident, notes, cache: { packs: kernels.weightCache.packs, evictions: kernels.weightCache.evictions } }) + '\n');
store.close();
kernels.dispose();
