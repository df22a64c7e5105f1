/**
 * `--backend ref|wasm` and `--threads N`: the kernels every command runs on. The wasm
 * backend is loaded lazily; if it cannot start (no build, no SIMD), `auto` falls back to
 * ref with a one-line warning, and an explicit `wasm` is an error.
 */
import { DitMoeError } from '../ref/errors.js';
import { refKernels, type Kernels } from '../ref/kernels.js';

export const BACKENDS = ['ref', 'wasm', 'auto'] as const;

export async function kernelsFor(name: string, threads?: number): Promise<Kernels> {
  if (name === 'ref') return refKernels;
  if (name !== 'wasm' && name !== 'auto') throw new DitMoeError(`unknown backend '${name}' (known: ${BACKENDS.join(', ')})`, '--backend');
  try {
    const mod = (await import(/* resolved at run time: the wasm build is optional */ String('../wasm/node.js'))) as { createNodeWasmKernels: (o?: { threads?: number }) => Promise<Kernels> };
    return await mod.createNodeWasmKernels({ threads });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (name === 'auto') {
      process.stderr.write(`dit-moe: warning: wasm backend unavailable (${why}); using ref\n`);
      return refKernels;
    }
    throw new DitMoeError(`cannot start the wasm backend: ${why}`, '--backend');
  }
}
