/**
 * `--backend ref|wasm|auto` and `--threads N`: the kernels every command runs on. If the
 * wasm backend cannot start (no build, no SIMD), `auto` falls back to ref with a one-line
 * warning, and an explicit `wasm` is an error. Threads default to every core; more threads
 * than cores are capped at the cores with a warning (never a silent fall-back to ref).
 */
import * as os from 'node:os';
import { Option } from 'commander';
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import { createWasmKernels } from '../wasm/node.js';
import { positiveInt } from './options.js';

export const BACKENDS = ['ref', 'wasm', 'auto'] as const;

/** --backend, an option of every command that computes (default `dflt`). */
export function backendOption(dflt: (typeof BACKENDS)[number]): Option {
  // checked as the command line is parsed, before any work
  const parse = (v: string) => {
    if (!(BACKENDS as readonly string[]).includes(v)) throw new DitMoeError(`unknown backend '${v}' (known: ${BACKENDS.join(', ')})`, '--backend');
    return v;
  };
  return new Option('--backend <name>', 'ref | wasm | auto').argParser(parse).default(dflt);
}

/** --threads, its companion: threads in all for the wasm backend. */
export function threadsOption(): Option {
  return new Option('--threads <n>', `threads for the wasm backend (default: every core, ${os.availableParallelism()} here)`).argParser(positiveInt('--threads'));
}

export async function kernelsFor(name: string, threadsGiven?: number): Promise<Kernels> {
  if (name === 'ref') {
    if (threadsGiven !== undefined) throw new DitMoeError('has no effect with --backend ref (it runs on one thread)', '--threads');
    return refKernels;
  }
  let threads = threadsGiven ?? os.availableParallelism();
  if (name !== 'wasm' && name !== 'auto') throw new DitMoeError(`unknown backend '${name}' (known: ${BACKENDS.join(', ')})`, '--backend');
  if (!(Number.isInteger(threads) && threads >= 1)) throw new DitMoeError(`'${threads}' is not a positive number of threads`, '--threads');
  const cores = os.availableParallelism();
  if (threads > cores) {
    process.stderr.write(`dit-moe: warning: --threads ${threads} is more than the ${cores} cores here; using ${cores}\n`);
    threads = cores;
  }
  try {
    return await createWasmKernels({ threads });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (name === 'auto') {
      process.stderr.write(`dit-moe: warning: wasm backend unavailable (${why}); using ref\n`);
      return refKernels;
    }
    throw new DitMoeError(`cannot start the wasm backend: ${why}`, '--backend');
  }
}
