/**
 * GEMM throughput, the linear layer out[M,N] = x[M,K]·w[N,K]ᵀ (the weight layout
 * [out, in]), in GFLOP/s = 2·M·N·K / time, on the DiT-MoE-S shapes:
 *   ref                the plain TypeScript loop (ref/linear.ts)
 *   wasm linear        Kernels.linear of the wasm backend, 1 thread: the copy of x in and
 *                      of out back, the packing of x, the product (w packed once, cached)
 *   wasm core          the packed product alone on operands already in wasm memory
 *                      (packing of A included, as in every call)
 *   wasm linear 2 thr. the same call with the columns split between the calling thread and
 *                      one worker thread on a shared memory
 * Every variant is checked against ref (1e-5 relative to max(1, max|ref|)) before timing.
 */
import Benchmark from 'benchmark';
import { refKernels, type Kernels } from '../ref/kernels.js';
import { createWasmKernels } from '../wasm/node.js';

export const title = 'GEMM (linear layer, weight [N, K]), GFLOP/s';

const SHAPES: [number, number, number][] = [
  [256, 384, 1152],
  [256, 384, 1536],
  [128, 1536, 384],
  [64, 384, 384],
  [512, 512, 512],
];

function random(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

function validate(name: string, got: Float32Array, want: Float32Array): void {
  let scale = 1;
  let err = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  if (!(err / scale <= 1e-5)) throw new Error(`${name}: differs from ref by ${(err / scale).toExponential(2)} relative`);
}

interface Rate {
  /** GFLOP/s at the mean time per call */
  mean: number;
  /** GFLOP/s of the fastest sample (the machine is shared: the least disturbed one) */
  best: number;
}

function measure(name: string, fn: () => void, flops: number, maxTime: number): Promise<Rate> {
  return new Promise((resolve, reject) => {
    const b = new Benchmark(name, fn, { maxTime, minSamples: 5, initCount: 1 });
    b.on('complete', () => {
      if (b.error) reject(b.error);
      else resolve({ mean: (flops * b.hz) / 1e9, best: flops / Math.min(...b.stats.sample) / 1e9 });
    });
    b.on('error', () => reject(b.error));
    b.run({ async: false });
  });
}

export async function run(log: (line: string) => void): Promise<string> {
  const wasm = await createWasmKernels();
  const wasm2 = await createWasmKernels({ threads: 2 });
  const e = wasm.exports;
  const a = wasm.arena;
  const rows: string[] = [];
  // calibration in the same run: f32x4 mul+add on registers, no loads (the ceiling)
  const peakRate = () => {
    let best = 0;
    for (let t = 0; t < 10; t++) {
      const n = 5e6;
      const t0 = performance.now();
      e.simdPeak(n, 1);
      best = Math.max(best, (64 * n) / ((performance.now() - t0) / 1e3) / 1e9);
    }
    return best;
  };
  const peakBefore = peakRate();
  rows.push('GFLOP/s = 2·M·N·K / time; mean over benchmark.js samples, and (in brackets) the fastest sample.');
  rows.push('');
  rows.push('| M×K · K×N | ref | wasm linear (1 thread) | wasm core (1 thread) | wasm linear (2 threads) | linear 1 thread / ref | 2 threads / 1 thread |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const [M, K, N] of SHAPES) {
    const flops = 2 * M * N * K;
    const x = random(M * K, 1);
    const w = random(N * K, 2);
    const b = random(N, 3);
    const want = new Float32Array(M * N);
    const got = new Float32Array(M * N);
    refKernels.linear(want, x, w, b, M, K, N);
    (wasm as Kernels).linear(got, x, w, b, M, K, N);
    validate(`wasm linear ${M}x${K}x${N}`, got, want);
    got.fill(NaN);
    wasm2.linear(got, x, w, b, M, K, N);
    validate(`wasm linear 2 threads ${M}x${K}x${N}`, got, want);

    // the core: operands resident in wasm memory, w packed once
    const px = a.put(x);
    const pw = a.put(w);
    const bp = a.alloc(e.packedBSize(N, K));
    const ap = a.alloc(e.packedASize(M, K));
    const pc = a.alloc(M * N);
    const tile = a.alloc(32);
    e.packBNK(bp, pw, K, N, K);
    const core = () => {
      e.fillRows(pc, N, 0, M, N);
      e.packARows(ap, px, K, M, K);
      e.gemmPacked(pc, N, ap, bp, M, N, K, tile);
    };
    core();
    const coreOut = new Float32Array(M * N);
    a.get(coreOut, pc);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) coreOut[m * N + n] += b[n];
    validate(`wasm core ${M}x${K}x${N}`, coreOut, want);

    for (let i = 0; i < 20; i++) core(); // past V8's tier-up from Liftoff to TurboFan
    const shape = `${M}×${K} · ${K}×${N}`;
    const gRef = await measure(`ref ${shape}`, () => refKernels.linear(want, x, w, b, M, K, N), flops, 1.5);
    const gLin = await measure(`wasm linear ${shape}`, () => wasm.linear(got, x, w, b, M, K, N), flops, 3);
    const gCore = await measure(`wasm core ${shape}`, core, flops, 3);
    for (let i = 0; i < 20; i++) wasm2.linear(got, x, w, b, M, K, N);
    const gLin2 = await measure(`wasm linear 2 threads ${shape}`, () => wasm2.linear(got, x, w, b, M, K, N), flops, 3);
    for (const p of [px, pw, bp, ap, pc, tile]) a.release(p);
    const f = (r: Rate) => `${r.mean.toFixed(1)} (${r.best.toFixed(1)})`;
    log(`${shape}: ref ${gRef.mean.toFixed(2)}, wasm linear ${f(gLin)}, wasm core ${f(gCore)}, wasm linear 2 threads ${f(gLin2)} GFLOP/s`);
    rows.push(`| ${shape} | ${gRef.mean.toFixed(2)} | ${f(gLin)} | ${f(gCore)} | ${f(gLin2)} | ${(gLin.mean / gRef.mean).toFixed(0)}× | ${(gLin2.mean / gLin.mean).toFixed(2)}× |`);
  }
  const peakAfter = peakRate();
  wasm2.dispose();
  rows.push('');
  rows.push(`Register-only f32x4 mul+add ceiling on this machine in this run (\`simdPeak\`, best of 10): ${peakBefore.toFixed(1)} GFLOP/s before, ${peakAfter.toFixed(1)} after. On a quiet Zen 5 core it is about 66–68; a lower figure means other processes shared the core.`);
  return rows.join('\n');
}
