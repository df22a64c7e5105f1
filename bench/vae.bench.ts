/**
 * The Stable Diffusion VAE at its real configuration (sd-vae-ft-mse: [128, 256, 512, 512], 2 layers
 * per block, 32 groups; random weights, the arithmetic does not depend on them) on the wasm
 * backend, 1 and 2 threads: the decoder on one 32×32 latent (a 256×256 picture) and one 64×64
 * latent (512×512), the encoder on one 256×256 picture; TAESD's decoder (random weights, taesd.py's
 * widths) at 256×256. GFLOP/s = 2·(MACs of every conv2d and linear call, counted as they run) /
 * time; "share of the GEMM" divides it by the rate of a plain linear layer of a similar shape
 * ([4096, 512] · [512, 512]ᵀ) measured in the same run and thread count. Peak memory: the wasm
 * memory's size after the run (it only grows) on a backend made for that run. One timed run per
 * row after none warm-up (the weights are packed during it: included), so the rows are short.
 */
import { createWasmKernels, type WasmKernels } from '../wasm/node.js';
import type { Kernels } from '../ref/kernels.js';
import { AutoencoderKL } from '../ref/vae/autoencoderKL.js';
import { DEFAULT_VAE_CONFIG } from '../ref/vae/config.js';
import { vaeParamSpecs } from '../ref/vae/params.js';
import { TaesdHalf, taesdParamSpecs } from '../ref/vae/taesd.js';
import { convOut, type Conv2dShape } from '../ref/vae/conv2d.js';

export const title = 'Stable Diffusion VAE and TAESD (wasm), ms and GFLOP/s';

function random(n: number, seed: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * scale;
  }
  return a;
}

/** Weights of a given list: 1/√fan-in for matrices, GroupNorm 1/0, so activations stay O(1). */
function weights(specs: { name: string; shape: number[] }[]): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fan = s.shape.length > 1 ? n / s.shape[0] : 1;
    if (s.shape.length === 1 && /norm|group_norm|pool\.1/.test(s.name)) m.set(s.name, new Float32Array(n).fill(s.name.endsWith('weight') ? 1 : 0));
    else m.set(s.name, random(n, i + 1, s.shape.length > 1 ? 2 / Math.sqrt(fan) : 0.02));
  });
  return m;
}

/** Kernels that count the MACs of conv2d and linear (and attention's two products) as they pass. */
function counting(k: Kernels): { kernels: Kernels; macs: () => number } {
  let macs = 0;
  const c = Object.create(k) as Kernels;
  c.conv2d = (out, x, w, b, s: Conv2dShape) => {
    const [Ho, Wo] = convOut(s);
    macs += s.N * s.O * Ho * Wo * s.C * s.kh * s.kw;
    k.conv2d(out, x, w, b, s);
  };
  c.linear = (out, x, w, b, M, K, N) => {
    macs += M * K * N;
    k.linear(out, x, w, b, M, K, N);
  };
  c.attention = (out, p, qkv, B, T, H, Dh) => {
    macs += 2 * B * H * T * T * Dh;
    k.attention(out, p, qkv, B, T, H, Dh);
  };
  return { kernels: c, macs: () => macs };
}

async function gemmRate(k: WasmKernels): Promise<number> {
  const [M, K, N] = [4096, 512, 512];
  const x = random(M * K, 3, 1);
  const w = random(N * K, 4, 0.05);
  const out = new Float32Array(M * N);
  k.linear(out, x, w, null, M, K, N);
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    k.linear(out, x, w, null, M, K, N);
    best = Math.max(best, (2 * M * N * K) / ((performance.now() - t0) * 1e6));
  }
  return best;
}

export async function run(log: (line: string) => void): Promise<string> {
  const config = { ...DEFAULT_VAE_CONFIG };
  const vaeWeights = weights(vaeParamSpecs(config));
  const taesdWeights = weights(taesdParamSpecs('decoder', 64, 4));
  const taesdShapes = new Map(taesdParamSpecs('decoder', 64, 4).map((s) => [s.name, s.shape]));
  const rows: string[] = [];
  const cases: { name: string; threads: number; run: (k: Kernels) => void; gemmShare: boolean }[] = [];
  const dec = (side: number) => (k: Kernels) => new AutoencoderKL(config, vaeWeights, k).decode(random(4 * side * side, 5, 1), 1, side, side);
  const enc = (k: Kernels) => new AutoencoderKL(config, vaeWeights, k).encode(random(3 * 256 * 256, 6, 1), 1, 256, 256);
  const tae = (k: Kernels) => new TaesdHalf('decoder', taesdWeights, taesdShapes, k).forward(random(4 * 32 * 32, 7, 1), 1, 32, 32);
  // the 512×512 decoder (4× the work of 256×256) runs on 2 threads only: the machine is shared
  for (const threads of [1, 2]) {
    cases.push({ name: 'decoder, 32×32 latent → 256×256', threads, gemmShare: true, run: dec(32) });
    cases.push({ name: 'encoder, 256×256 → 32×32', threads, gemmShare: true, run: enc });
    cases.push({ name: 'TAESD decoder, 32×32 → 256×256', threads, gemmShare: true, run: tae });
  }
  cases.push({ name: 'decoder, 64×64 latent → 512×512', threads: 2, gemmShare: true, run: dec(64) });
  for (const c of cases) {
    const wasm = await createWasmKernels({ threads: c.threads });
    try {
      const gemm = await gemmRate(wasm);
      const { kernels, macs } = counting(wasm);
      const t0 = performance.now();
      c.run(kernels);
      const ms = performance.now() - t0;
      const gflops = (2 * macs()) / (ms * 1e6);
      const peak = wasm.arena.memory.buffer.byteLength / 2 ** 20;
      const line = `| ${c.name} | ${c.threads} | ${ms.toFixed(0)} | ${(macs() / 1e9).toFixed(1)} | ${gflops.toFixed(1)} | ${gemm.toFixed(1)} | ${((100 * gflops) / gemm).toFixed(0)}% | ${peak.toFixed(0)} |`;
      log(line);
      rows.push(line);
    } finally {
      wasm.dispose();
    }
  }
  return [
    '| run | threads | ms | GMAC | GFLOP/s | GEMM GFLOP/s (same run) | share of the GEMM | wasm memory after (MiB) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'GMAC counts every conv2d, linear and attention product of the run; the GEMM column is Kernels.linear on [4096, 512]·[512, 512]ᵀ (best of 5) on the same backend just before. The wasm memory holds the packed weights (the VAE decoder\'s are ~200 MB in float32), every live activation and the scratch; it never shrinks, so its size after a run is the run\'s peak.',
  ].join('\n');
}
