/**
 * The backends every shared suite runs against (TensorFlow.js's describeWithFlags, for us
 * `describe.each(backends())`): the plain TypeScript reference and the WebAssembly SIMD backend
 * (built by `npm run build:wasm`, which `npm ci` runs).
 */
import { refKernels, type Kernels } from '../ref/kernels.js';
import { createWasmKernelsSync } from '../wasm/node.js';

let list: [string, Kernels][] | null = null;

export function backends(): [string, Kernels][] {
  if (!list) list = [['ref', refKernels], ['wasm', createWasmKernelsSync()]];
  return list;
}
