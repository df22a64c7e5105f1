/**
 * The thread pool of the wasm backend, whatever the host: the protocol of threads.ts (a job
 * is a list of calls in a SharedArrayBuffer, claimed with `Atomics.add` by every thread, the
 * caller included; see there), the workers' program, and the pool that drives them. The host
 * starts the workers: Node with worker_threads (wasm/threads.ts), a browser with Web Workers
 * (wasm/browser.ts); both give each the compiled module and the shared memory.
 */
import { DitMoeError } from '../core/errors.js';
import type { WasmMemory, WasmModule } from './webassembly.js';

import { WORKER_FUNCTIONS, type WorkerFunction } from './exports.js';

export { WORKER_FUNCTIONS, type WorkerFunction };
/** A call: an export's name and its arguments; an argument -(s + 1) is the thread's scratch slot s. */
export type Call = [WorkerFunction, number[]];

export interface ThreadPool {
  /** Workers besides the calling thread. */
  readonly workers: number;
  /**
   * Runs every call once, on whichever thread claims it first; `scratch[t]` is thread t's
   * table of scratch slots (t = 0 the caller). `self(call, t)` runs a call on the caller.
   */
  run(calls: Call[], scratch: number[][], self: (call: Call, thread: number) => void): void;
  dispose(): void;
}

const MAX_WORKERS = 63;
const MAX_SLOTS = 8;
const MAX_ARGS = 22;
const CALL_STRIDE = MAX_ARGS + 2; // fn, nArgs, args
/** Int32 header: seq, counter, nCalls; entered / done / error per worker. */
const H_SEQ = 0;
const H_COUNTER = 1;
const H_NCALLS = 2;
const H_ENTERED = 64;
const H_DONE = H_ENTERED + 64;
const H_ERROR = H_DONE + 64;
const HEADER_INTS = H_ERROR + 64;
const SCRATCH_F64 = (MAX_WORKERS + 1) * MAX_SLOTS;
/** Calls one job holds; longer lists run as several jobs. */
export const MAX_CALLS = 4096;
const BYTES = HEADER_INTS * 4 + (SCRATCH_F64 + MAX_CALLS * CALL_STRIDE) * 8;
const SPIN_MS = 1;
const TIMEOUT_MS = 60_000;

/**
 * The worker's program: `start(init, post)` instantiates the module on the shared memory, posts
 * { ready } (or { error }) and serves jobs until the sequence word turns negative. A host
 * prelude (`workerSource`) calls it with the init data and its way to post a message.
 */
const WORKER_MAIN = `
function start({ module, memory, ctrl, fns, index }, post) {
const i32 = new Int32Array(ctrl, 0, ${HEADER_INTS});
const f64 = new Float64Array(ctrl, ${HEADER_INTS * 4});
let table;
try {
  const e = new WebAssembly.Instance(module, { env: { memory } }).exports;
  table = fns.map((n) => e[n]);
} catch (err) {
  post({ error: String((err && err.message) || err) });
  return;
}
post({ ready: true });
const w = index - 1;
const args = [];
let seen = 0;
for (;;) {
  let t0 = performance.now();
  while (Atomics.load(i32, ${H_SEQ}) === seen) {
    if (performance.now() - t0 > ${SPIN_MS}) {
      Atomics.wait(i32, ${H_SEQ}, seen, 1000);
      t0 = performance.now();
    }
  }
  seen = Atomics.load(i32, ${H_SEQ});
  if (seen < 0) break;
  // enter the job unless the caller has withdrawn it from this worker
  const cur = Atomics.load(i32, ${H_ENTERED} + w);
  if (cur === -seen || Atomics.compareExchange(i32, ${H_ENTERED} + w, cur, seen) !== cur) continue;
  try {
    const n = i32[${H_NCALLS}];
    const scratch = index * ${MAX_SLOTS};
    for (let c = Atomics.add(i32, ${H_COUNTER}, 1); c < n; c = Atomics.add(i32, ${H_COUNTER}, 1)) {
      let p = ${SCRATCH_F64} + c * ${CALL_STRIDE};
      const fi = f64[p++];
      const na = f64[p++];
      args.length = na;
      for (let a = 0; a < na; a++) {
        const v = f64[p++];
        args[a] = v < 0 ? f64[scratch - v - 1] : v;
      }
      table[fi](...args);
    }
  } catch (err) {
    Atomics.store(i32, ${H_ERROR} + w, 1);
  }
  Atomics.store(i32, ${H_DONE} + w, seen);
  Atomics.notify(i32, ${H_DONE} + w);
}
}
`;

/** The source of a worker: the program, then the host's prelude that calls `start(init, post)`. */
export function workerSource(prelude: string): string {
  return WORKER_MAIN + prelude;
}

/** What a worker is started with (Node: workerData; a browser: the first message). */
export interface WorkerInit {
  module: WasmModule;
  memory: WasmMemory;
  ctrl: SharedArrayBuffer;
  fns: readonly string[];
  index: number;
}

/** A started worker, as the pool sees it. */
export interface PoolWorker {
  /** Why the worker is gone (an error, its exit), or null while it runs. */
  readonly dead: string | null;
  terminate(): void;
}

/**
 * Starts n workers through the host's `spawn` (which resolves once the worker has posted
 * { ready }, and rejects on { error }) and returns the pool; if any fails, all are stopped.
 */
export async function startThreadPool(n: number, module: WasmModule, memory: WasmMemory, spawn: (init: WorkerInit) => Promise<PoolWorker>): Promise<ThreadPool> {
  if (n > MAX_WORKERS) throw new DitMoeError(`at most ${MAX_WORKERS} worker threads, asked for ${n}`, 'wasm threads');
  const ctrl = new SharedArrayBuffer(BYTES);
  const started = await Promise.allSettled(Array.from({ length: n }, (_, w) => spawn({ module, memory, ctrl, fns: WORKER_FUNCTIONS, index: w + 1 })));
  const workers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const w of workers) w.terminate();
    throw new DitMoeError(`cannot start ${n} worker thread(s): ${(failed.reason as Error)?.message ?? String(failed.reason)}`, 'wasm threads');
  }
  return new SharedPool(workers, ctrl);
}

/** Whether this thread may block in Atomics.wait (a browser's main thread may not: it spins instead). */
function mayWait(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

class SharedPool implements ThreadPool {
  private i32: Int32Array;
  private readonly canWait = mayWait();
  private f64: Float64Array;
  private seq = 0;

  constructor(
    private slots: PoolWorker[],
    ctrl: SharedArrayBuffer,
  ) {
    this.i32 = new Int32Array(ctrl, 0, HEADER_INTS);
    this.f64 = new Float64Array(ctrl, HEADER_INTS * 4);
  }

  get workers(): number {
    return this.slots.length;
  }

  run(calls: Call[], scratch: number[][], self: (call: Call, thread: number) => void): void {
    for (let start = 0; start < calls.length; start += MAX_CALLS) this.runJob(calls.slice(start, start + MAX_CALLS), scratch, self);
  }

  private runJob(calls: Call[], scratch: number[][], self: (call: Call, thread: number) => void): void {
    const { i32, f64 } = this;
    for (const s of this.slots) if (s.dead) throw new DitMoeError(`a worker thread is gone (${s.dead})`, 'wasm threads');
    for (let t = 0; t < scratch.length; t++) {
      if (scratch[t].length > MAX_SLOTS) throw new DitMoeError(`more than ${MAX_SLOTS} scratch slots per thread`, 'wasm threads');
      for (let k = 0; k < scratch[t].length; k++) f64[t * MAX_SLOTS + k] = scratch[t][k];
    }
    calls.forEach(([fn, args], c) => {
      if (args.length > MAX_ARGS) throw new DitMoeError(`${fn} takes more than ${MAX_ARGS} arguments`, 'wasm threads');
      let p = SCRATCH_F64 + c * CALL_STRIDE;
      f64[p++] = WORKER_FUNCTIONS.indexOf(fn);
      f64[p++] = args.length;
      for (const a of args) f64[p++] = a;
    });
    const seq = ++this.seq;
    Atomics.store(i32, H_NCALLS, calls.length);
    Atomics.store(i32, H_COUNTER, 0);
    Atomics.store(i32, H_SEQ, seq);
    Atomics.notify(i32, H_SEQ);
    // the caller claims calls like any worker
    for (let c = Atomics.add(i32, H_COUNTER, 1); c < calls.length; c = Atomics.add(i32, H_COUNTER, 1)) self(calls[c], 0);
    for (let w = 0; w < this.slots.length; w++) this.finish(w, seq);
  }

  /** Withdraws the job from worker w if it has not entered it, else waits for its done. */
  private finish(w: number, seq: number): void {
    const i32 = this.i32;
    const cur = Atomics.load(i32, H_ENTERED + w);
    if (cur !== seq && Atomics.compareExchange(i32, H_ENTERED + w, cur, -seq) === cur) return;
    const t0 = performance.now();
    while (Atomics.load(i32, H_DONE + w) !== seq) {
      const t = performance.now();
      if (t - t0 > SPIN_MS && this.canWait) Atomics.wait(i32, H_DONE + w, Atomics.load(i32, H_DONE + w), 100);
      if (t - t0 > TIMEOUT_MS) throw new DitMoeError(`worker ${w + 1} did not finish within ${TIMEOUT_MS / 1000} s`, 'wasm threads');
    }
    if (Atomics.load(i32, H_ERROR + w)) {
      Atomics.store(i32, H_ERROR + w, 0);
      throw new DitMoeError(`a kernel failed in worker thread ${w + 1}`, 'wasm threads');
    }
  }

  dispose(): void {
    Atomics.store(this.i32, H_SEQ, -1);
    Atomics.notify(this.i32, H_SEQ);
    for (const s of this.slots) s.terminate();
    this.slots = [];
  }
}
