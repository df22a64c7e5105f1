/**
 * Worker threads for the wasm backend in Node (worker_threads; the protocol and the pool are
 * platform-neutral, in wasm/pool.ts). Each worker instantiates the
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
import { startThreadPool, workerSource, type PoolWorker, type ThreadPool, type WorkerInit } from './pool.js';
import type { WasmMemory, WasmModule } from './webassembly.js';

export { WORKER_FUNCTIONS, MAX_CALLS, type WorkerFunction, type Call, type ThreadPool } from './pool.js';

const NODE_SOURCE = workerSource(`
const { parentPort, workerData } = require('node:worker_threads');
start(workerData, (m) => parentPort.postMessage(m));
`);

/** A Node worker thread running the pool's program; resolves once it has instantiated the module. */
async function spawnNode(init: WorkerInit): Promise<PoolWorker> {
  const worker = new Worker(NODE_SOURCE, { eval: true, workerData: init });
  const handle = { dead: null as string | null, terminate: () => void worker.terminate() };
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error))));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`exited with code ${code}`)));
    });
  } catch (e) {
    handle.terminate();
    throw e;
  }
  worker.removeAllListeners();
  worker.on('error', (e) => (handle.dead = e.message));
  worker.on('exit', (code) => (handle.dead ??= `exited with code ${code}`));
  worker.unref();
  return handle;
}

/** Starts n workers on the shared memory; resolves once every one has instantiated the module. */
export function createThreadPool(module: WasmModule, memory: WasmMemory, n: number): Promise<ThreadPool> {
  return startThreadPool(n, module, memory, spawnNode);
}
