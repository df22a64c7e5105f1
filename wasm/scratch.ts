/**
 * The scratch space of one kernel call on the wasm backend: operands placed in the module's
 * memory (in place when they live there, else copied in and, for outputs, back), and blocks
 * freed together when the call ends (wasm/backend.ts `scratch`).
 */
import type { Arena } from './arena.js';

/** How an output block starts: the kernel overwrites it all, accumulates into zeros, or into its contents (+=). */
export type OutputInit = 'none' | 'zero' | 'keep';

/**
 * Blocks of one kernel call, freed together when the call ends. Operands that live in the
 * module's memory (`Kernels.tensor`) are used in place; others are copied in, and outputs
 * copied back when the call succeeds. An output shares memory with no other operand of the
 * call: one that would is given a scratch block instead (so `out` may alias `x`, as with copies).
 */
export class Scratch {
  private blocks: number[] = [];
  /** Byte ranges of the operands used in place, and whether the call writes them. */
  private inPlace: [number, number, boolean][] = [];
  private copyBack: [Float32Array, number, number][] = [];

  constructor(
    private arena: Arena,
    private resident: (a: Float32Array) => boolean,
  ) {}

  private keep(p: number): number {
    this.blocks.push(p);
    return p;
  }

  alloc(n: number): number {
    return this.keep(this.arena.alloc(n));
  }

  zeros(n: number): number {
    return this.keep(this.arena.zeros(n));
  }

  put(src: Float32Array, n?: number): number {
    return this.keep(this.arena.put(src, n));
  }

  putI32(src: Int32Array): number {
    return this.keep(this.arena.putI32(src));
  }

  /** a[0, n) used in place when it lives in the memory and no write of this call overlaps it. */
  private useInPlace(a: Float32Array, n: number, write: boolean): boolean {
    if (!this.resident(a)) return false;
    const lo = a.byteOffset;
    const hi = lo + 4 * n;
    for (const [l, h, w] of this.inPlace) if (lo < h && l < hi && (write || w)) return false;
    this.inPlace.push([lo, hi, write]);
    return true;
  }

  /** Where the kernel reads a[0, n). */
  input(a: Float32Array, n: number): number {
    return this.useInPlace(a, n, false) ? a.byteOffset : this.put(a, n);
  }

  /** Where the kernel writes a[0, n), started as `init` says. */
  output(a: Float32Array, n: number, init: OutputInit): number {
    if (this.useInPlace(a, n, true)) {
      if (init === 'zero') this.arena.clear(a.byteOffset, n);
      return a.byteOffset;
    }
    const p = init === 'keep' ? this.put(a, n) : init === 'zero' ? this.zeros(n) : this.alloc(n);
    this.copyBack.push([a, p, n]);
    return p;
  }

  /** Copies the outputs that were not written in place back to their arrays. */
  finish(): void {
    for (const [a, p, n] of this.copyBack) this.arena.get(a, p, n);
  }

  releaseAll(): void {
    for (let i = this.blocks.length - 1; i >= 0; i--) this.arena.release(this.blocks[i]);
    this.blocks = [];
  }
}
