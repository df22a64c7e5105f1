/**
 * The onnxruntime-web peer of the GEMM bench (bench/gemm.bench.ts), on 1 or 2 threads.
 *
 * onnxruntime-web reads `env.wasm.numThreads` once, when its wasm module starts, and runs
 * every session on that one global thread pool (there is no per-session thread count), and
 * its Node build shares `env` through onnxruntime-common. So each thread count gets its own
 * Node worker thread holding its own onnxruntime-web: this file is that worker's entry as
 * well as the bench side that talks to it. The worker does the timing itself (a message
 * round trip per call would cost more than the small products): benchmark.js in deferred
 * mode, each call `await session.run({ x })` with x given as a Float32Array and y copied
 * into a Float32Array, like the other peers, then `deferred.resolve()`; a sample is that
 * many calls back to back, so the time includes onnxruntime's own async machinery.
 *
 * The model is one Gemm node (transB = 1: the weight as stored, [N, K]; the bias as C),
 * written by bench/onnxModel.ts; `form` picks the other ways of writing it. On 1 thread,
 * Gemm transB = 1, Gemm on the weight transposed to [K, N], and MatMul + Add measured the
 * same within the noise of this shared machine (about ±5%, no consistent order over five
 * runs on four shapes): onnxruntime pre-packs a constant B in each case, and fuses
 * MatMul + Add into one Gemm. So the weight goes in as stored.
 */
import Benchmark from 'benchmark';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-web';
import { linearModel, type LinearForm } from './onnxModel.js';
import type { Peer, Rate } from './peer.js';

type Request =
  | { op: 'prepare'; x: Float32Array; w: Float32Array; b: Float32Array; M: number; K: number; N: number; form: LinearForm }
  | { op: 'run' }
  | { op: 'measure'; flops: number; maxTime: number }
  | { op: 'release' };

type Reply = { ok: true; y?: Float32Array; rate?: Rate; info?: string } | { ok: false; error: string };

interface WorkerData {
  onnxPeerThreads: number;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/**
 * onnxruntime-web in a worker thread with `env.wasm.numThreads = threads` (SIMD on, no
 * proxy worker), or null when it is not installed or cannot run that many threads here.
 */
export async function onnxRuntimeWeb(threads: number, log: (line: string) => void, form: LinearForm = 'gemm-transB'): Promise<Peer | null> {
  const name = `onnxruntime-web ${threads} thr.`;
  const worker = new Worker(new URL(import.meta.url), { workerData: { onnxPeerThreads: threads } satisfies WorkerData });
  let failed: Error | null = null;
  const pending: ((r: Reply) => void)[] = [];
  worker.on('message', (r: Reply) => pending.shift()?.(r));
  worker.on('error', (e) => {
    failed = e;
    for (const p of pending.splice(0)) p({ ok: false, error: message(e) });
  });
  const reply = () => new Promise<Reply>((resolve) => (failed ? resolve({ ok: false, error: message(failed) }) : pending.push(resolve)));
  const ask = async (req: Request): Promise<Reply & { ok: true }> => {
    const r = reply();
    worker.postMessage(req);
    const got = await r;
    if (!got.ok) throw new Error(`${name}: ${got.error}`);
    return got;
  };

  const ready = await reply(); // the worker's first message: its onnxruntime-web started, or why not
  if (!ready.ok) {
    log(`peer onnxruntime-web (${threads} thread${threads > 1 ? 's' : ''}) unavailable (${ready.error})`);
    await worker.terminate();
    return null;
  }
  log(`peer: onnxruntime-web ${ready.info ?? ''}, one ${form === 'matmul-add' ? 'MatMul + Add' : form === 'gemm' ? 'Gemm' : 'Gemm (transB = 1)'} model per shape`);
  return {
    name,
    async prepare(x, w, b, M, K, N, out) {
      await ask({ op: 'prepare', x, w, b, M, K, N, form });
      return {
        run: async () => {
          const r = await ask({ op: 'run' });
          out.set(r.y!);
        },
        measure: async (flops, maxTime) => (await ask({ op: 'measure', flops, maxTime })).rate!,
        dispose: async () => void (await ask({ op: 'release' })),
      };
    },
    dispose: async () => void (await worker.terminate()),
  };
}

/** The worker: one onnxruntime-web, one session at a time. */
async function serve(threads: number): Promise<void> {
  const port = parentPort!;
  const post = (r: Reply) => port.postMessage(r);
  let ort: typeof Ort;
  try {
    ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.simd = true;
    ort.env.wasm.proxy = false;
    // start the runtime now (the first session does) and see how many threads it kept:
    // without SharedArrayBuffer/wasm threads it falls back to 1 with a warning
    const probe = await ort.InferenceSession.create(linearModel(new Float32Array(1), new Float32Array(1), 1, 1, 1, 'gemm-transB'));
    await probe.release();
    if (ort.env.wasm.numThreads !== threads) throw new Error(`asked for ${threads} threads, it runs ${ort.env.wasm.numThreads}`);
    post({ ok: true, info: `${ort.env.versions.web} (wasm SIMD, ${threads} thread${threads > 1 ? 's' : ''})` });
  } catch (e) {
    post({ ok: false, error: message(e) });
    return;
  }

  let session: Ort.InferenceSession | null = null;
  let call: () => Promise<void> = async () => {
    throw new Error('no model prepared');
  };
  let out = new Float32Array(0);
  port.on('message', async (req: Request) => {
    try {
      if (req.op === 'prepare') {
        const { x, w, b, M, K, N, form } = req;
        session = await ort.InferenceSession.create(linearModel(w, b, M, K, N, form), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
        const s = session;
        out = new Float32Array(M * N);
        call = async () => {
          const r = await s.run({ x: new ort.Tensor('float32', x, [M, K]) });
          const y = r.y;
          out.set(y.data as Float32Array);
          y.dispose();
        };
        post({ ok: true });
      } else if (req.op === 'run') {
        out.fill(NaN);
        await call();
        post({ ok: true, y: out });
      } else if (req.op === 'measure') {
        for (let i = 0; i < 5; i++) await call();
        post({ ok: true, rate: await measureDeferred(call, req.flops, req.maxTime) });
      } else {
        await session?.release();
        session = null;
        post({ ok: true });
      }
    } catch (e) {
      post({ ok: false, error: message(e) });
    }
  });
}

/** benchmark.js in deferred mode: the same statistics as `measure` in gemm.bench.ts. */
function measureDeferred(fn: () => Promise<void>, flops: number, maxTime: number): Promise<Rate> {
  return new Promise((resolve, reject) => {
    let error: unknown = null;
    const b = new Benchmark(
      'onnxruntime-web',
      (deferred: Benchmark.Deferred) => {
        fn().then(
          () => deferred.resolve(),
          (e: unknown) => {
            error = e;
            b.abort();
            deferred.resolve();
          },
        );
      },
      { defer: true, maxTime, minSamples: 5, initCount: 1 },
    );
    b.on('complete', () => {
      if (error || b.error) reject(error ?? b.error);
      else resolve({ mean: (flops * b.hz) / 1e9, best: flops / Math.min(...b.stats.sample) / 1e9 });
    });
    b.on('error', () => reject(b.error));
    b.run({ async: true });
  });
}

if (!isMainThread && typeof (workerData as Partial<WorkerData> | null)?.onnxPeerThreads === 'number') {
  void serve((workerData as WorkerData).onnxPeerThreads);
}
