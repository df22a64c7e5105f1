/**
 * The wasm backend where there is no file system: a page, a Web Worker, a bundled app.
 * `loadWasmKernels()` fetches the kernels from the package's own assets, found by bundlers
 * (Vite, webpack, Parcel) through `new URL('…/kernels.wasm', import.meta.url)`:
 * - where the page is cross-origin isolated (`crossOriginIsolated`: SharedArrayBuffer exists),
 *   the threads build `kernels-mt.wasm` on a shared memory, with threads − 1 Web Workers
 *   (default: `navigator.hardwareConcurrency`);
 * - otherwise the one-thread build `kernels.wasm` on a plain memory, and `threads` is 1.
 * Workers block in `Atomics.wait`, which a page's main thread may not do: there the caller
 * spins while it waits for them, so run a threaded backend inside a Web Worker.
 * `url` / `threadedUrl` point elsewhere (a CDN, a bundler without `new URL` assets).
 */
import { DitMoeError } from '../core/errors.js';
import { createSharedMemory, createWasmKernelsAsync, createWasmKernelsOn, type WasmKernels, type WasmOptions } from './backend.js';
import { startThreadPool, workerSource, type PoolWorker, type WorkerInit } from './pool.js';
import { webAssembly, type WasmModule } from './webassembly.js';

export interface BrowserWasmOptions extends WasmOptions {
  /** The one-thread build (default: the package's kernels.wasm). */
  url?: string | URL;
  /** The threads build (default: the package's kernels-mt.wasm). */
  threadedUrl?: string | URL;
}

/** The package's kernels next to this module: dist/wasm/browser.js → wasm/build/. */
function defaultUrl(threaded: boolean): URL {
  return threaded ? new URL('../../wasm/build/kernels-mt.wasm', import.meta.url) : new URL('../../wasm/build/kernels.wasm', import.meta.url);
}

interface BrowserGlobals {
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
  fetch?: (url: string) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;
  Worker?: new (url: string) => BrowserWorker;
  Blob?: new (parts: string[], opts: { type: string }) => unknown;
  URL: { createObjectURL(blob: unknown): string; revokeObjectURL(url: string): void };
}

interface BrowserWorker {
  postMessage(m: unknown): void;
  terminate(): void;
  onmessage: ((e: { data: { ready?: boolean; error?: string } }) => void) | null;
  onerror: ((e: { message?: string }) => void) | null;
}

const g = globalThis as unknown as BrowserGlobals;

/** Whether shared memory and so threads are available here (a cross-origin isolated page, or Node). */
export function threadsAvailable(): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && g.crossOriginIsolated !== false;
}

/** The bytes at a URL. */
export async function fetchBytes(url: string | URL): Promise<Uint8Array> {
  if (!g.fetch) throw new DitMoeError('this runtime has no fetch', String(url));
  let r;
  try {
    r = await g.fetch(String(url));
  } catch (e) {
    throw new DitMoeError(`cannot fetch (${(e as Error).message})`, String(url));
  }
  if (!r.ok) throw new DitMoeError(`cannot fetch (HTTP ${r.status})`, String(url));
  return new Uint8Array(await r.arrayBuffer());
}

/** The one-thread wasm backend from the kernels at a URL (a plain memory: operands copied in and out per call). */
export async function createWasmKernelsFromUrl(url: string | URL = defaultUrl(false)): Promise<WasmKernels> {
  return createWasmKernelsAsync(await fetchBytes(url));
}

const BROWSER_SOURCE = workerSource(`
self.onmessage = (e) => { self.onmessage = null; start(e.data, (m) => self.postMessage(m)); };
`);

/** A Web Worker (from a blob: URL, so no file to serve) running the pool's program. */
function spawnBrowser(sourceUrl: string): (init: WorkerInit) => Promise<PoolWorker> {
  return (init) =>
    new Promise<PoolWorker>((resolve, reject) => {
      const worker = new g.Worker!(sourceUrl);
      const handle = { dead: null as string | null, terminate: () => worker.terminate() };
      worker.onmessage = (e) => {
        if (e.data.ready) {
          worker.onmessage = null;
          worker.onerror = (ev) => (handle.dead = ev.message ?? 'worker error');
          resolve(handle);
        } else {
          worker.terminate();
          reject(new Error(e.data.error ?? 'the worker failed'));
        }
      };
      worker.onerror = (ev) => {
        worker.terminate();
        reject(new Error(ev.message ?? 'the worker failed to start'));
      };
      worker.postMessage(init);
    });
}

/**
 * The wasm backend for this page or worker (see the top of this file). `threads` is the total,
 * the calling thread included; without cross-origin isolation it is 1 whatever is asked (the
 * returned backend's `threads` says what was granted).
 */
export async function loadWasmKernels(options: BrowserWasmOptions = {}): Promise<WasmKernels> {
  const wa = webAssembly();
  if (!wa) throw new DitMoeError('WebAssembly is not available in this runtime', 'wasm backend');
  const wanted = options.threads ?? g.navigator?.hardwareConcurrency ?? 1;
  if (!Number.isInteger(wanted) || wanted < 1 || wanted > 64) throw new DitMoeError(`threads must be an integer from 1 to 64, got ${wanted}`, 'wasm backend');
  if (!threadsAvailable()) return createWasmKernelsFromUrl(options.url ?? defaultUrl(false));
  const url = options.threadedUrl ?? defaultUrl(true);
  const memory = createSharedMemory();
  let module: WasmModule;
  try {
    module = await wa.compile(await fetchBytes(url));
  } catch (e) {
    throw e instanceof DitMoeError ? e : new DitMoeError(`does not compile (${(e as Error).message})`, String(url));
  }
  if (wanted === 1) return createWasmKernelsOn(module, memory, null, options.minParallelFlops);
  if (!g.Worker || !g.Blob) throw new DitMoeError('this runtime has no Web Workers; ask for 1 thread', 'wasm threads');
  const sourceUrl = g.URL.createObjectURL(new g.Blob([BROWSER_SOURCE], { type: 'text/javascript' }));
  let pool;
  try {
    pool = await startThreadPool(wanted - 1, module, memory, spawnBrowser(sourceUrl));
  } finally {
    g.URL.revokeObjectURL(sourceUrl);
  }
  try {
    return createWasmKernelsOn(module, memory, pool, options.minParallelFlops);
  } catch (e) {
    pool.dispose();
    throw e;
  }
}
