/**
 * Worker threads for the wasm backend (Node: worker_threads). Each worker instantiates the
 * shared-memory build of the kernels (kernels-mt.wasm) on the one shared
 * `WebAssembly.Memory`; all allocation stays on the calling thread.
 *
 * A job is a list of independent calls `exports[fn](...args)` (column blocks of a product,
 * attention heads) written once into a SharedArrayBuffer; every thread, the caller
 * included, claims the next call with `Atomics.add` until none is left. So a worker that the
 * OS has not scheduled yet (the machine is busy, or it is waking from `Atomics.wait`) costs
 * nothing: the caller runs its share. Before returning, the caller either sees each worker's
 * "done" or withdraws the job from a worker that has not entered it yet (one
 * compare-exchange on a word both sides race for), so it never waits on a sleeping thread.
 * Scratch that must differ per thread (packed operands, the edge tile) is named in the
 * arguments by a placeholder -(slot + 1), resolved from the executing thread's row of the
 * scratch table. Workers spin for about a millisecond before `Atomics.wait`.
 */
import { Worker } from 'node:worker_threads';
import { DitMoeError } from '../core/errors.js';
import type { WasmMemory, WasmModule } from './webassembly.js';

/** The calls a worker may run, by index. */
export const WORKER_FUNCTIONS = ['gemmPackedCols', 'attentionHeadForward', 'attentionHeadForwardTiled', 'attentionHeadBackward', 'expertForward', 'swigluGate', 'swigluGateBackward', 'packARows', 'packACols', 'packBKN', 'layerNormForward', 'layerNormBackward', 'modulateForward', 'modulateBackward', 'gatedResidualForward', 'gatedResidualBackward', 'swigluRowsForward', 'swigluRowsBackward', 'conv2dRows', 'groupNormGroups'] as const;
export type WorkerFunction = (typeof WORKER_FUNCTIONS)[number];
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

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, ctrl, fns, index } = workerData;
const i32 = new Int32Array(ctrl, 0, ${HEADER_INTS});
const f64 = new Float64Array(ctrl, ${HEADER_INTS * 4});
let table;
try {
  const e = new WebAssembly.Instance(module, { env: { memory } }).exports;
  table = fns.map((n) => e[n]);
} catch (err) {
  parentPort.postMessage({ error: String((err && err.message) || err) });
  process.exit(1);
}
parentPort.postMessage({ ready: true });
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
`;

interface Slot {
  worker: Worker;
  dead: string | null;
}

/** Starts n workers on the shared memory; resolves once every one has instantiated the module. */
export async function createThreadPool(module: WasmModule, memory: WasmMemory, n: number): Promise<ThreadPool> {
  if (n > MAX_WORKERS) throw new DitMoeError(`at most ${MAX_WORKERS} worker threads, asked for ${n}`, 'wasm threads');
  const ctrl = new SharedArrayBuffer(BYTES);
  const slots: Slot[] = [];
  try {
    await Promise.all(
      Array.from({ length: n }, async (_, w) => {
        const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, ctrl, fns: WORKER_FUNCTIONS, index: w + 1 } });
        const slot: Slot = { worker, dead: null };
        slots.push(slot);
        await new Promise<void>((resolve, reject) => {
          worker.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error))));
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`exited with code ${code}`)));
        });
        worker.removeAllListeners();
        worker.on('error', (e) => (slot.dead = e.message));
        worker.on('exit', (code) => (slot.dead ??= `exited with code ${code}`));
        worker.unref();
      }),
    );
  } catch (e) {
    for (const s of slots) void s.worker.terminate();
    throw new DitMoeError(`cannot start ${n} worker thread(s): ${(e as Error).message}`, 'wasm threads');
  }
  return new NodePool(slots, ctrl);
}

class NodePool implements ThreadPool {
  private i32: Int32Array;
  private f64: Float64Array;
  private seq = 0;

  constructor(
    private slots: Slot[],
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
      if (t - t0 > SPIN_MS) Atomics.wait(i32, H_DONE + w, Atomics.load(i32, H_DONE + w), 100);
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
    for (const s of this.slots) void s.worker.terminate();
    this.slots = [];
  }
}
