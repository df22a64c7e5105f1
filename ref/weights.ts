/**
 * What the model reads its weights from: a tensor by its state_dict name, as float32, valid
 * for the scope of the forward that asked for it (the stem, one block, the final layer).
 * `ParamStore` (every parameter in one float32 buffer: training) is one; a file's tensors kept
 * in their stored dtype, resident or read block by block as the forward reaches them
 * (io/weightStore.ts), is another. The model calls `enter(scope)` before a scope's `get`s and
 * `leave(scope)` after its last use of them.
 */
import type { ParamStore } from './params.js';

export interface Weights {
  get(name: string): Float32Array;
  has(name: string): boolean;
  /** The forward enters a scope: STEM (-1, the embeddings), block i, or depth (the final layer). */
  enter?(scope: number): void;
  leave?(scope: number): void;
  /** Every weight in one float32 buffer (what training and backward need), when the store can give it. */
  materialize?(): ParamStore;
}

/** The scope of the embeddings (patch, timestep, label, position). */
export const STEM = -1;

/** Runs f inside a scope of `w`, leaving it even when f throws. */
export function inScope<T>(w: Weights, scope: number, f: () => T): T {
  w.enter?.(scope);
  try {
    return f();
  } finally {
    w.leave?.(scope);
  }
}

const tags = new WeakMap<Float32Array, string>();

/**
 * Gives a weight array a stable key: a store that hands out a new array for the same weight
 * (widened per block, read per block) tags each with the same key, and a backend that caches
 * by weight (the wasm backend's packed panels) finds it again across forwards.
 */
export function tagWeight(a: Float32Array, key: string): Float32Array {
  tags.set(a, key);
  return a;
}

/** The key `tagWeight` gave, if any. */
export function weightTag(a: Float32Array): string | undefined {
  return tags.get(a);
}
