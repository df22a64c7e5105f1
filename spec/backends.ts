/**
 * The backends every shared suite runs against (TensorFlow.js's describeWithFlags, for us
 * `describe.each(backends())`): the plain TypeScript reference and the WebAssembly SIMD backend
 * (built by `npm run build:wasm`, which `npm ci` runs).
 */
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import { createWasmKernels, createWasmKernelsSync, createWasmKernelsUnshared, type WasmKernels } from '../wasm/node.js';

let list: [string, Kernels][] | null = null;

/**
 * ref, wasm on a shared memory (activations in its memory, used in place: what Node runs) and
 * wasm on a memory that is not shared (every operand copied in and out: what a page without
 * cross-origin isolation runs).
 */
export function backends(): [string, Kernels][] {
  if (!list)
    list = [
      ['ref', refKernels],
      ['wasm', createWasmKernelsSync()],
      ['wasm, unshared memory', createWasmKernelsUnshared()],
    ];
  return list;
}

/**
 * The one table of backends every operator suite (spec/ops/) runs on: ref, wasm (1 thread),
 * wasm on 2 threads with every product and attention split between the threads however small
 * (minParallelFlops 0), so the split paths meet every shape, and wasm on an unshared memory
 * (every operand copied in and out: the browser's path). `dispose` stops the worker thread
 * (call it in afterAll).
 */
export async function backendsWithThreads(): Promise<{ list: [string, Kernels][]; wasm: WasmKernels; dispose: () => void }> {
  const wasm = await createWasmKernels();
  const wasm2 = await createWasmKernels({ threads: 2, minParallelFlops: 0 });
  return {
    list: [
      ['ref', refKernels],
      ['wasm', wasm],
      ['wasm 2 threads', wasm2],
      ['wasm, unshared memory', createWasmKernelsUnshared()],
    ],
    wasm,
    dispose: () => wasm2.dispose(),
  };
}
