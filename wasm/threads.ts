/**
 * Worker threads for the wasm backend (Node: worker_threads). Each worker instantiates the
 * shared-memory build of the kernels (kernels-mt.wasm) on the one shared
 * `WebAssembly.Memory`; all allocation stays on the calling thread. A job is a list of
 * calls `exports[fn](...args)` written into a small SharedArrayBuffer per worker; the
 * caller runs its own share meanwhile, then waits. Both sides spin for about a millisecond
 * before `Atomics.wait` (a shorter spin loses much of the speed to wake-up latency).
 * A worker that fails or stops answering gives a DitMoeError, never a hang.
 */
import { Worker } from 'node:worker_threads';
import { DitMoeError } from '../ref/errors.js';
import type { WasmMemory, WasmModule } from './webassembly.js';

/** The calls a worker may run, by index. */
export const WORKER_FUNCTIONS = ['gemmPackedCols', 'attentionHeadForward', 'attentionHeadBackward'] as const;
export type WorkerFunction = (typeof WORKER_FUNCTIONS)[number];
export type Call = [WorkerFunction, number[]];

export interface ThreadPool {
  /** Workers besides the calling thread. */
  readonly workers: number;
  /** Runs jobs[0] on the calling thread (through `self`) and jobs[i] on worker i-1; returns when all are done. */
  run(jobs: Call[][], self: (call: Call) => void): void;
  dispose(): void;
}

const CTRL_INTS = 16; // [0] job sequence (-1: stop), [1] done sequence, [2] error flag
const ARGS = 1 << 16; // f64 slots: [nCalls, (fn, nArgs, args...)*]
const SPIN_MS = 1;
const TIMEOUT_MS = 60_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, ctrl, fns } = workerData;
const i32 = new Int32Array(ctrl, 0, ${CTRL_INTS});
const f64 = new Float64Array(ctrl, ${CTRL_INTS * 4});
let table;
try {
  const e = new WebAssembly.Instance(module, { env: { memory } }).exports;
  table = fns.map((n) => e[n]);
} catch (err) {
  parentPort.postMessage({ error: String(err && err.message || err) });
  process.exit(1);
}
parentPort.postMessage({ ready: true });
let seen = 0;
for (;;) {
  let t0 = performance.now();
  while (Atomics.load(i32, 0) === seen) {
    if (performance.now() - t0 > ${SPIN_MS}) {
      Atomics.wait(i32, 0, seen, 1000);
      t0 = performance.now();
    }
  }
  seen = Atomics.load(i32, 0);
  if (seen < 0) break;
  try {
    let p = 0;
    const n = f64[p++];
    for (let c = 0; c < n; c++) {
      const fi = f64[p++];
      const na = f64[p++];
      const args = new Array(na);
      for (let a = 0; a < na; a++) args[a] = f64[p++];
      table[fi](...args);
    }
  } catch (err) {
    Atomics.store(i32, 2, 1);
  }
  Atomics.store(i32, 1, seen);
  Atomics.notify(i32, 1);
}
`;

interface Slot {
  worker: Worker;
  i32: Int32Array;
  f64: Float64Array;
  seq: number;
  dead: string | null;
}

/** Starts n workers on the shared memory; resolves once every one has instantiated the module. */
export async function createThreadPool(module: WasmModule, memory: WasmMemory, n: number): Promise<ThreadPool> {
  const slots: Slot[] = [];
  try {
    await Promise.all(
      Array.from({ length: n }, async () => {
        const ctrl = new SharedArrayBuffer(CTRL_INTS * 4 + ARGS * 8);
        const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, ctrl, fns: WORKER_FUNCTIONS } });
        const slot: Slot = { worker, i32: new Int32Array(ctrl, 0, CTRL_INTS), f64: new Float64Array(ctrl, CTRL_INTS * 4), seq: 0, dead: null };
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
  return new NodePool(slots);
}

class NodePool implements ThreadPool {
  constructor(private slots: Slot[]) {}

  get workers(): number {
    return this.slots.length;
  }

  run(jobs: Call[][], self: (call: Call) => void): void {
    const started: Slot[] = [];
    for (let w = 1; w < jobs.length; w++) {
      const s = this.slots[w - 1];
      if (s.dead) throw new DitMoeError(`worker ${w} is gone (${s.dead})`, 'wasm threads');
      let p = 0;
      s.f64[p++] = jobs[w].length;
      for (const [fn, args] of jobs[w]) {
        if (p + 2 + args.length > ARGS) throw new DitMoeError(`a job of ${jobs[w].length} calls does not fit the control block`, 'wasm threads');
        s.f64[p++] = WORKER_FUNCTIONS.indexOf(fn);
        s.f64[p++] = args.length;
        for (const a of args) s.f64[p++] = a;
      }
      s.seq++;
      Atomics.store(s.i32, 0, s.seq);
      Atomics.notify(s.i32, 0);
      started.push(s);
    }
    for (const call of jobs[0] ?? []) self(call);
    for (const s of started) this.wait(s);
  }

  private wait(s: Slot): void {
    const t0 = performance.now();
    let t = t0;
    while (Atomics.load(s.i32, 1) !== s.seq) {
      if (s.dead) throw new DitMoeError(`a worker died (${s.dead})`, 'wasm threads');
      t = performance.now();
      if (t - t0 > SPIN_MS) Atomics.wait(s.i32, 1, Atomics.load(s.i32, 1), 100);
      if (t - t0 > TIMEOUT_MS) throw new DitMoeError(`a worker did not answer within ${TIMEOUT_MS / 1000} s`, 'wasm threads');
    }
    if (Atomics.load(s.i32, 2)) {
      Atomics.store(s.i32, 2, 0);
      throw new DitMoeError('a kernel failed in a worker thread', 'wasm threads');
    }
  }

  dispose(): void {
    for (const s of this.slots) {
      Atomics.store(s.i32, 0, -1);
      Atomics.notify(s.i32, 0);
      void s.worker.terminate();
    }
    this.slots = [];
  }
}
