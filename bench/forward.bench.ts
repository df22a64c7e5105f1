/**
 * End to end: the eval forward of DiT-MoE-S/2-8E2A at 256×256 (a 32×32×4 latent), batch 2
 * (one guidance pair), per backend, as benchmark.js measures it. Effective GFLOP/s counts
 * 2 × (linear MACs + attention MACs) per image (ref/accounting.ts).
 * Run: node dist/bench/forward.bench.js [--backends ref,wasm] [--preset S/2] [--experts 8]
 */
import Benchmark from 'benchmark';
import { presetConfig } from '../ref/config.js';
import { initializeWeights } from '../ref/init.js';
import { DiTModel } from '../ref/model.js';
import { accounting } from '../ref/accounting.js';
import type { Kernels } from '../ref/kernels.js';
import { makeRng } from '../ref/diffusion/rng.js';

export interface ForwardBenchRow {
  backend: string;
  ms: number;
  gflops: number;
  samples: number;
}

export async function benchForward(backends: [string, Kernels][], preset = 'S/2', experts = 8, batch = 2, log: (s: string) => void = console.log): Promise<ForwardBenchRow[]> {
  const c = presetConfig(preset, { num_experts: experts });
  const params = initializeWeights(c, 0);
  // official init zeroes adaLN and the final layer; give them values so no work is skipped
  const rng = makeRng(1);
  for (const s of params.specs) if (/adaLN|final_layer/.test(s.name)) params.get(s.name).forEach((_, i, a) => (a[i] = (rng.uniform() - 0.5) * 0.02));
  const x = new Float32Array(batch * c.in_channels * c.input_size * c.input_size).map(() => rng.normal());
  const shape = [batch, c.in_channels, c.input_size, c.input_size];
  const t = Float32Array.from({ length: batch }, (_, i) => 500 + i);
  const y = Int32Array.from({ length: batch }, (_, i) => (i === batch - 1 && batch > 1 ? c.num_classes : i));
  const a = accounting(c);
  const flop = 2 * batch * (a.linearMacs + a.attentionMacs);
  const rows: ForwardBenchRow[] = [];
  let reference: Float32Array | null = null;
  for (const [name, kernels] of backends) {
    const model = new DiTModel(c, params, kernels);
    const out = model.forward(x, shape, t, y); // warm-up, and validation against the first backend
    if (!reference) reference = out;
    else {
      let err = 0;
      let scale = 1;
      for (let i = 0; i < out.length; i++) {
        err = Math.max(err, Math.abs(out[i] - reference[i]));
        scale = Math.max(scale, Math.abs(reference[i]));
      }
      if (!(err / scale < 1e-3)) throw new Error(`${name} forward differs from ${backends[0][0]} by ${err / scale} relative`);
    }
    const bench = new Benchmark(name, () => model.forward(x, shape, t, y), { minSamples: 2, maxTime: 20, initCount: 1 });
    await new Promise<void>((resolve) => bench.on('complete', () => resolve()).run({ async: true }));
    const ms = bench.stats.mean * 1000;
    const row = { backend: name, ms, gflops: flop / (ms / 1000) / 1e9, samples: bench.stats.sample.length };
    log(`forward DiT-MoE-${preset}-${experts}E2A batch ${batch} [${name}]: ${ms.toFixed(0)} ms, ${row.gflops.toFixed(2)} GFLOP/s effective (${row.samples} samples)`);
    rows.push(row);
  }
  return rows;
}

export const title = 'End to end: DiT-MoE-S/2-8E2A eval forward at 256×256 (32×32×4 latent), batch 2, and its MoE layer alone';

/** The MoE layer alone at the S/2-8E2A shapes (D 384, 8 experts top-2, 512 tokens), ms per call. */
async function benchMoeLayer(name: string, kernels: Kernels, log: (s: string) => void): Promise<number> {
  const { moeForward } = await import('../ref/moe.js');
  const D = 384;
  const E = 8;
  const F = 4 * D;
  const rng = makeRng(2);
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
  const w = {
    gate: r(E * D, 0.05),
    experts: Array.from({ length: E }, () => ({ gate: r(F * D, 0.05), up: r(F * D, 0.05), down: r(D * F, 0.03) })),
    shared: { gate: r(2 * D * D, 0.05), up: r(2 * D * D, 0.05), down: r(D * 2 * D, 0.03) },
  };
  const dims = { D, E, k: 2, F, Fs: 2 * D, normTopk: false, alpha: 0.01, seqAux: false };
  const B = 2;
  const T = 256;
  const x = r(B * T * D, 1);
  const out = new Float32Array(B * T * D);
  const bench = new Benchmark(`moe ${name}`, () => moeForward(kernels, out, x, w, dims, B, T), { minSamples: 3, maxTime: 5 });
  await new Promise<void>((resolve) => bench.on('complete', () => resolve()).run({ async: true }));
  const ms = bench.stats.mean * 1000;
  log(`MoE layer alone [${name}]: ${ms.toFixed(1)} ms`);
  return ms;
}

export async function run(log: (line: string) => void): Promise<string> {
  const { refKernels } = await import('../ref/kernels.js');
  const { createWasmKernels } = await import('../wasm/node.js');
  const wasm1 = await createWasmKernels();
  const wasm2 = await createWasmKernels({ threads: 2 });
  try {
    const backends: [string, Kernels][] = [
      ['ref', refKernels],
      ['wasm 1 thread', wasm1],
      ['wasm 2 threads', wasm2],
    ];
    const rows = await benchForward(backends, 'S/2', 8, 2, log);
    const moe: number[] = [];
    for (const [name, k] of backends.slice(1)) moe.push(await benchMoeLayer(name, k, log));
    const lines = ['| backend | forward ms | effective GFLOP/s | × ref | MoE layer alone, ms |', '|---|---:|---:|---:|---:|'];
    rows.forEach((r, i) => lines.push(`| ${r.backend} | ${r.ms.toFixed(0)} | ${r.gflops.toFixed(2)} | ${(rows[0].ms / r.ms).toFixed(1)} | ${i === 0 ? '-' : moe[i - 1].toFixed(1)} |`));
    lines.push('', 'Effective GFLOP/s counts 2 × (15.43 GMAC of linear layers + 0.60 GMAC of attention) per image.');
    return lines.join('\n');
  } finally {
    (wasm2 as { dispose?: () => void }).dispose?.();
  }
}
