/**
 * `--backend ref|wasm|auto` and `--threads N`: the kernels every command runs on. If the
 * wasm backend cannot start (no build, no SIMD), `auto` falls back to ref with a one-line
 * warning, and an explicit `wasm` is an error.
 */
import { DitMoeError } from '../ref/errors.js';
import { refKernels, type Kernels } from '../ref/kernels.js';
import { createWasmKernels } from '../wasm/node.js';

export const BACKENDS = ['ref', 'wasm', 'auto'] as const;

export async function kernelsFor(name: string, threads?: number): Promise<Kernels> {
  if (name === 'ref') return refKernels;
  if (name !== 'wasm' && name !== 'auto') throw new DitMoeError(`unknown backend '${name}' (known: ${BACKENDS.join(', ')})`, '--backend');
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) throw new DitMoeError(`'${threads}' is not a positive number of threads`, '--threads');
  try {
    return await createWasmKernels(threads !== undefined ? ({ threads } as Parameters<typeof createWasmKernels>[0]) : {});
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (name === 'auto') {
      process.stderr.write(`dit-moe: warning: wasm backend unavailable (${why}); using ref\n`);
      return refKernels;
    }
    throw new DitMoeError(`cannot start the wasm backend: ${why}`, '--backend');
  }
}
