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
 *   onnxruntime-web    the second peer (bench/onnxPeer.ts): onnxruntime-web's wasm backend
 *                      (MLAS kernels, SIMD) on 1 and on 2 threads, each in its own worker
 *                      thread; a one-node ONNX model written by hand (bench/onnxModel.ts):
 *                      Gemm with transB = 1, the weight [N, K] and the bias as initializers,
 *                      x [M, K] the graph input. session.run is async, so it is timed with
 *                      benchmark.js in deferred mode. Also a devDependency of the bench only.
 * Every variant is checked against ref (1e-5 relative to max(1, max|ref|)) before timing.
 *
 * Two calibrations in the same run, before and after the table: the micro-kernel with every
 * operand in L1 (the ceiling of this GEMM), and the register peak of an f32x4 mul + add loop
 * without memory traffic (the ceiling of any f32x4 kernel on this core at that moment); the
 * GEMM rows are also given as a percentage of the latter.
 */
import Benchmark from 'benchmark';
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import { createWasmKernels } from '../wasm/node.js';
import { ceilings, PEAK_CHAINS } from './calibration.js';
import { onnxRuntimeWeb } from './onnxPeer.js';
import type { Peer, Rate } from './peer.js';

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

/** A rate as the tables print it: mean (fastest sample), or n/a. */
const f = (r: Rate | null) => (r ? `${r.mean.toFixed(1)} (${r.best.toFixed(1)})` : 'n/a');

function validate(name: string, got: Float32Array, want: Float32Array): void {
  let scale = 1;
  let err = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  if (!(err / scale <= 1e-5)) throw new Error(`${name}: differs from ref by ${(err / scale).toExponential(2)} relative`);
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
      async prepare(x, w, b, M, K, N, out) {
        const wT = new Float32Array(K * N);
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wT[k * N + n] = w[n * K + k];
        const tw = tf.tensor2d(wT, [K, N]);
        const tb = tf.tensor1d(b);
        const call = () => {
          const tx = tf.tensor2d(x, [M, K]);
          const y = tf.fused.matMul({ a: tx, b: tw, bias: tb });
          out.set(y.dataSync() as Float32Array);
          tx.dispose();
          y.dispose();
        };
        return {
          run: async () => call(),
          measure: async (flops, maxTime) => {
            for (let i = 0; i < 5; i++) call();
            return measure(`tfjs-wasm ${M}x${K}x${N}`, call, flops, maxTime);
          },
          dispose: async () => {
            tw.dispose();
            tb.dispose();
          },
        };
      },
      dispose: async () => tf.disposeVariables(),
    };
  } catch (e) {
    log(`peer @tensorflow/tfjs-backend-wasm unavailable (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

export async function run(log: (line: string) => void): Promise<string> {
  const wasm = await createWasmKernels();
  const wasm2 = await createWasmKernels({ threads: 2 });
  const tfjs = await tfjsWasm(log);
  const ort1 = await onnxRuntimeWeb(1, log);
  const ort2 = await onnxRuntimeWeb(2, log);
  const e = wasm.exports;
  const a = wasm.arena;
  const rows: string[] = [];
  // the ceilings of this moment (bench/calibration.ts), before and after the table
  const ceiling = await ceilings(wasm);
  const { l1: l1Before, reg: regBefore } = ceiling();
  log(`calibration: L1 micro-kernel ${l1Before.toFixed(1)} GFLOP/s, register peak ${regBefore.toFixed(1)} GFLOP/s`);
  const peers = [tfjs, ort1, ort2];
  const rates: { shape: string; ref: number; lin: Rate; core: Rate; lin2: Rate; peer: (Rate | null)[] }[] = [];
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
      e.packARows(ap, px, K, M, K);
      e.gemmPacked(pc, N, ap, bp, M, N, K, tile, 1); // C = A·B
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
    const gPeers: (Rate | null)[] = [];
    for (const peer of peers) {
      if (!peer) {
        gPeers.push(null);
        continue;
      }
      const prepared = await peer.prepare(x, w, b, M, K, N, got);
      got.fill(NaN);
      await prepared.run();
      validate(`${peer.name} ${M}x${K}x${N}`, got, want);
      gPeers.push(await prepared.measure(flops, 3));
      await prepared.dispose();
    }
    log(
      `${shape}: ref ${gRef.mean.toFixed(2)}, wasm linear ${f(gLin)}, wasm core ${f(gCore)}, wasm linear 2 threads ${f(gLin2)}, ` +
        `tfjs-wasm ${f(gPeers[0])}, onnxruntime-web 1 thread ${f(gPeers[1])}, 2 threads ${f(gPeers[2])} GFLOP/s`,
    );
    rates.push({ shape, ref: gRef.mean, lin: gLin, core: gCore, lin2: gLin2, peer: gPeers });
  }
  const { l1: l1After, reg: regAfter } = ceiling();
  wasm2.dispose();
  for (const peer of peers) await peer?.dispose();

  // the percentages against the larger (least disturbed) of the two register-peak runs
  const peak = Math.max(regBefore, regAfter);
  const ratio = (ours: Rate, theirs: Rate | null) => (theirs ? `${(ours.mean / theirs.mean).toFixed(2)}×` : 'n/a');
  const pct = (r: number, cores: number) => `${((100 * r) / (cores * peak)).toFixed(0)}%`;
  rows.push('GFLOP/s = 2·M·N·K / time; mean over benchmark.js samples, and (in brackets) the fastest sample.');
  rows.push('');
  rows.push(
    '| M×K · K×N | ref | wasm linear (1 thread) | wasm core (1 thread) | wasm linear (2 threads) | tfjs-wasm (1 thread) | onnxruntime-web (1 thread) | onnxruntime-web (2 threads) ' +
      '| wasm 1 thread / ref | 2 threads / 1 thread | wasm / tfjs-wasm (1 thread) | wasm / onnxruntime-web (1 thread) | wasm / onnxruntime-web (2 threads) ' +
      '| % of register peak: wasm 1 thread, 2 threads (of 2×) |',
  );
  rows.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rates) {
    const [gTf, gOrt1, gOrt2] = r.peer;
    rows.push(
      `| ${r.shape} | ${r.ref.toFixed(2)} | ${f(r.lin)} | ${f(r.core)} | ${f(r.lin2)} | ${f(gTf)} | ${f(gOrt1)} | ${f(gOrt2)} ` +
        `| ${(r.lin.mean / r.ref).toFixed(0)}× | ${(r.lin2.mean / r.lin.mean).toFixed(2)}× | ${ratio(r.lin, gTf)} | ${ratio(r.lin, gOrt1)} | ${ratio(r.lin2, gOrt2)} ` +
        `| ${pct(r.lin.mean, 1)}, ${pct(r.lin2.mean, 2)} |`,
    );
  }
  rows.push('');
  rows.push(
    'Peers, each validated against ref before timing: tfjs-wasm = @tensorflow/tfjs-backend-wasm (XNNPACK), `tf.fused.matMul` on the weight given once as [K, N]; ' +
      'onnxruntime-web = its wasm backend (MLAS, SIMD), a one-node ONNX model (Gemm, transB = 1, weight and bias as initializers, x the input) ' +
      'run with `await session.run` and timed with benchmark.js in deferred mode, each thread count in its own worker thread ' +
      '(`env.wasm.numThreads` is fixed when onnxruntime-web starts). Every peer takes x and gives out back as Float32Arrays per call, like ours. ' +
      'The wasm / onnxruntime-web (2 threads) column compares our 2 threads with its 2.',
  );
  rows.push('');
  rows.push(
    `The same micro-kernel with every operand in L1 (16×256 · 256×16, fastest of 40 runs), measured in this run: ${l1Before.toFixed(1)} GFLOP/s before the table, ${l1After.toFixed(1)} after. ` +
      `It is the ceiling of this GEMM on this machine at that moment. ` +
      `The register peak of this core (f32x4 mul + add, ${PEAK_CHAINS} independent chains in registers, no memory traffic, fastest of 40 runs): ${regBefore.toFixed(1)} GFLOP/s before the table, ${regAfter.toFixed(1)} after; ` +
      `the percentages are of ${peak.toFixed(1)} (of twice that for 2 threads). A figure well below the ~55 of a quiet core here means other processes shared the cores (the machine has 2, shared).`,
  );
  return rows.join('\n');
}
