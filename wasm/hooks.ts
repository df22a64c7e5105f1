/**
 * What the operators of wasm/ops/ use of the backend (wasm/backend.ts, which is one): the
 * module's exports and memory, packed weights, per-call scratch (wasm/scratch.ts), the threads.
 */
import type { Arena } from './arena.js';
import type { KernelExports } from './exports.js';
import type { Scratch } from './scratch.js';
import type { Call } from './threads.js';

export interface BackendHooks {
  /** The module's exports (timed wrappers while a profile runs). */
  readonly exports: KernelExports;
  readonly arena: Arena;
  /** Threads in all. */
  readonly threads: number;
  /** The 2×16 edge tile of each thread (index 0: the calling thread). */
  readonly tiles: number[];
  /** Whether `a` is a view of the module's memory, which kernels can use in place. */
  resident(a: Float32Array): boolean;
  /** Packed panels of the weight w [N, K]: 'nk' for x·wᵀ, 'kn' for dout·w (held until the call ends). */
  packed(w: Float32Array, N: number, K: number, form: 'nk' | 'kn'): number;
  /** Runs body with scratch blocks freed afterwards (outputs copied back when not in place). */
  scratch<T>(body: (s: Scratch) => T): T;
  /** Threads worth waking for `flops` of work. */
  parts(flops: number): number;
  /** Independent calls on all threads; argument −(s + 1) is slot s of the running thread's row of `scratch`. */
  runCalls(calls: Call[], scratch: number[][]): void;
}
