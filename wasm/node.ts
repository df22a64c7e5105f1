/**
 * Node loader for the wasm backend: reads `wasm/build/kernels.wasm` from the package root,
 * found by walking up from this file (wasm/node.ts under vitest, dist/wasm/node.js when
 * built) to the package.json named "dit-moe".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DitMoeError } from '../core/errors.js';
import { createSharedMemory, createWasmKernelsFrom, createWasmKernelsOn, type WasmKernels, type WasmOptions } from './backend.js';
import { createThreadPool } from './threads.js';
import { webAssembly, type WasmModule } from './webassembly.js';

export type { WasmKernels, WasmOptions } from './backend.js';

/** The package root: the nearest ancestor directory whose package.json is "dit-moe". */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'dit-moe') return dir;
      } catch {
        // an unreadable package.json is not ours: keep walking up
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new DitMoeError('cannot find the dit-moe package root above this file', 'wasm/node.ts');
    dir = up;
  }
}

/** Path of the compiled kernels (the shared-memory build for threads). */
export function kernelsWasmPath(threads = false): string {
  return path.join(packageRoot(), 'wasm', 'build', threads ? 'kernels-mt.wasm' : 'kernels.wasm');
}

function readKernels(threads = false): Uint8Array {
  const file = kernelsWasmPath(threads);
  try {
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DitMoeError(code === 'ENOENT' ? 'not found: build it with `npm run build:wasm`' : `cannot read (${(e as Error).message})`, file);
  }
}

function threadCount(options: WasmOptions): number {
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new DitMoeError(`threads must be an integer from 1 to 64, got ${threads}`, 'wasm backend');
  return threads;
}

function notCompiling(e: unknown, file: string): DitMoeError {
  return e instanceof DitMoeError ? e : new DitMoeError(`does not compile (${(e as Error).message}); rebuild it with \`npm run build:wasm\``, file);
}

function compileSync(bytes: Uint8Array, file: string): WasmModule {
  try {
    return new (webAssembly()!.Module)(bytes);
  } catch (e) {
    throw notCompiling(e, file);
  }
}

/**
 * The wasm backend on a shared memory (the threads build), so `tensor()` views stay valid as
 * the memory grows and kernels use them in place. threads > 1 starts threads - 1 worker
 * threads on it; call `dispose()` to stop them (they do not keep the process alive).
 */
export async function createWasmKernels(options: WasmOptions = {}): Promise<WasmKernels> {
  const threads = threadCount(options);
  const memory = createSharedMemory();
  let module: WasmModule;
  try {
    module = await webAssembly()!.compile(readKernels(true));
  } catch (e) {
    throw notCompiling(e, kernelsWasmPath(true));
  }
  if (threads === 1) return createWasmKernelsOn(module, memory, null, options.minParallelFlops, options.weightBudget);
  const pool = await createThreadPool(module, memory, threads - 1);
  try {
    return createWasmKernelsOn(module, memory, pool, options.minParallelFlops, options.weightBudget);
  } catch (e) {
    pool.dispose();
    throw e;
  }
}

/** The wasm backend on one thread and a shared memory, compiled synchronously (Node allows it for any size). */
export function createWasmKernelsSync(): WasmKernels {
  return createWasmKernelsOn(compileSync(readKernels(true), kernelsWasmPath(true)), createSharedMemory(), null);
}

/**
 * The one-thread build on a memory that is not shared (what a page without cross-origin
 * isolation gets): every operand is copied in and out of the module per call.
 */
export function createWasmKernelsUnshared(): WasmKernels {
  return createWasmKernelsFrom(compileSync(readKernels(), kernelsWasmPath()));
}
