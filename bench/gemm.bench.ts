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
 *   tfjs-wasm          the peer: @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, 1 thread),
 *                      tf.fused.matMul with the weight given once as [K, N] (its fast layout;
 *                      [N, K] with transposeB is ~10× slower), x uploaded and out read back
 *                      per call like ours. A devDependency of the bench only: without it
 *                      the column reads n/a.
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

interface Peer {
  name: string;
  /** Prepares a call for one shape: returns the function that computes out (validated) */
  prepare(x: Float32Array, w: Float32Array, b: Float32Array, M: number, K: number, N: number, out: Float32Array): { call: () => void; dispose: () => void };
  dispose(): void;
}

/** @tensorflow/tfjs-backend-wasm on one thread, or null when it is not installed. */
async function tfjsWasm(log: (line: string) => void): Promise<Peer | null> {
  try {
    const tf = await import('@tensorflow/tfjs-core');
    const backend = await import('@tensorflow/tfjs-backend-wasm');
    backend.setThreadsCount(1);
    await tf.setBackend('wasm');
    await tf.ready();
    log(`peer: @tensorflow/tfjs-backend-wasm ${backend.version_wasm}, SIMD ${String(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))}, ${backend.getThreadsCount()} thread`);
    return {
      name: 'tfjs-wasm',
      prepare(x, w, b, M, K, N, out) {
        const wT = new Float32Array(K * N);
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wT[k * N + n] = w[n * K + k];
        const tw = tf.tensor2d(wT, [K, N]);
        const tb = tf.tensor1d(b);
        return {
          call: () => {
            const tx = tf.tensor2d(x, [M, K]);
            const y = tf.fused.matMul({ a: tx, b: tw, bias: tb });
            out.set(y.dataSync() as Float32Array);
            tx.dispose();
            y.dispose();
          },
          dispose: () => {
            tw.dispose();
            tb.dispose();
          },
        };
      },
      dispose: () => tf.disposeVariables(),
    };
  } catch (e) {
    log(`peer @tensorflow/tfjs-backend-wasm unavailable (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

export async function run(log: (line: string) => void): Promise<string> {
  const wasm = await createWasmKernels();
  const wasm2 = await createWasmKernels({ threads: 2 });
  const peer = await tfjsWasm(log);
  const e = wasm.exports;
  const a = wasm.arena;
  const rows: string[] = [];
  // calibration in the same run: the micro-kernel on operands that stay in L1
  // (16×256 · 256×16), the ceiling of this GEMM on this machine at this moment
  const peakRate = () => {
    const [M, K, N] = [16, 256, 16];
    const ap = a.zeros(e.packedASize(M, K));
    const bp = a.zeros(e.packedBSize(N, K));
    const c = a.zeros(M * N);
    const tile = a.alloc(32);
    let best = 0;
    for (let t = 0; t < 40; t++) {
      const t0 = performance.now();
      for (let r = 0; r < 200; r++) e.gemmPacked(c, N, ap, bp, M, N, K, tile);
      best = Math.max(best, (200 * 2 * M * N * K) / ((performance.now() - t0) / 1e3) / 1e9);
    }
    for (const p of [ap, bp, c, tile]) a.release(p);
    return best;
  };
  const peakBefore = peakRate();
  rows.push('GFLOP/s = 2·M·N·K / time; mean over benchmark.js samples, and (in brackets) the fastest sample.');
  rows.push('');
  rows.push('| M×K · K×N | ref | wasm linear (1 thread) | wasm core (1 thread) | wasm linear (2 threads) | tfjs-wasm (1 thread) | wasm 1 thread / ref | 2 threads / 1 thread | wasm / tfjs-wasm (1 thread) |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
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
    let gPeer: Rate | null = null;
    if (peer) {
      const prepared = peer.prepare(x, w, b, M, K, N, got);
      got.fill(NaN);
      prepared.call();
      validate(`${peer.name} ${M}x${K}x${N}`, got, want);
      for (let i = 0; i < 5; i++) prepared.call();
      gPeer = await measure(`${peer.name} ${shape}`, prepared.call, flops, 3);
      prepared.dispose();
    }
    const f = (r: Rate) => `${r.mean.toFixed(1)} (${r.best.toFixed(1)})`;
    const fp = gPeer ? f(gPeer) : 'n/a';
    log(`${shape}: ref ${gRef.mean.toFixed(2)}, wasm linear ${f(gLin)}, wasm core ${f(gCore)}, wasm linear 2 threads ${f(gLin2)}, tfjs-wasm ${fp} GFLOP/s`);
    const vsPeer = gPeer ? `${(gLin.mean / gPeer.mean).toFixed(2)}×` : 'n/a';
    rows.push(`| ${shape} | ${gRef.mean.toFixed(2)} | ${f(gLin)} | ${f(gCore)} | ${f(gLin2)} | ${fp} | ${(gLin.mean / gRef.mean).toFixed(0)}× | ${(gLin2.mean / gLin.mean).toFixed(2)}× | ${vsPeer} |`);
  }
  const peakAfter = peakRate();
  wasm2.dispose();
  peer?.dispose();
  rows.push('');
  rows.push(`The same micro-kernel with every operand in L1 (16×256 · 256×16, fastest of 40 runs), measured in this run: ${peakBefore.toFixed(1)} GFLOP/s before the table, ${peakAfter.toFixed(1)} after. It is the ceiling of this GEMM on this machine at that moment; a figure well below the ~60 reached on a quiet Zen 5 core means other processes shared the cores (the machine has 2, shared).`);
  return rows.join('\n');
}
