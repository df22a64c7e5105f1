/**
 * What the operators that live in their own files (wasm/conv2d.ts, wasm/groupnorm.ts) need of the
 * backend (wasm/backend.ts): its exports, packed weights, per-call scratch, and the threads.
 */
import type { Arena } from './arena.js';
import type { Call } from './threads.js';

/** The per-call operand placement of backend.ts's Scratch (in place when resident, else copied). */
export interface CallScratch {
  alloc(n: number): number;
  input(a: Float32Array, n: number): number;
  output(a: Float32Array, n: number, init: 'none' | 'zero' | 'keep'): number;
}

export interface BackendHooks {
  /** The module's exports (timed wrappers while a profile runs). */
  exports(): Record<string, (...args: number[]) => number | void>;
  readonly arena: Arena;
  /** Threads in all. */
  readonly threads: number;
  /** The weight w [N, K] packed as B = wᵀ (16-column panels), cached. */
  packedWeight(w: Float32Array, N: number, K: number): number;
  /** Runs body with scratch blocks freed afterwards (outputs copied back when not in place). */
  scratch<T>(body: (s: CallScratch) => T): T;
  /** Threads worth waking for `flops` of work. */
  parts(flops: number): number;
  /** Independent calls on all threads; argument −(s + 1) is slot s of the running thread's row of `scratch`. */
  runCalls(calls: Call[], scratch: number[][]): void;
  /** The 2×16 edge tile of each thread. */
  tiles(): number[];
}
