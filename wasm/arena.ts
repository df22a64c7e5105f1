/**
 * The host's side of the WebAssembly memory: one `WebAssembly.Memory` the module imports,
 * an arena above the module's static data (`heapBase`) with first-fit allocation and
 * coalescing free, and typed views rebuilt whenever the memory has grown (growing detaches
 * the old ArrayBuffer). Pointers are byte addresses, 64-byte aligned; sizes are f32 counts.
 */
import { DitMoeError } from '../core/errors.js';
import type { WasmMemory } from './webassembly.js';

const PAGE = 65536;
const ALIGN = 64;
/** wasm32 addresses 4 GiB; V8 caps a memory at 65536 pages. */
const MAX_PAGES = 65536;

interface Block {
  ptr: number;
  bytes: number;
}

export class Arena {
  private f32View: Float32Array;
  private free: Block[] = [];
  private used = new Map<number, number>();
  private top: number;

  /**
   * `zero(ptr, n)` sets n f32 at ptr to zero: the module's `memory.fill` where the backend gives
   * it (TypedArray fill on a shared buffer goes element by element, ~10× slower).
   */
  constructor(
    readonly memory: WasmMemory,
    heapBase: number,
    private readonly zero: (ptr: number, n: number) => void = (ptr, n) => this.f32.fill(0, ptr >>> 2, (ptr >>> 2) + n),
  ) {
    this.top = Math.ceil(heapBase / ALIGN) * ALIGN;
    this.f32View = new Float32Array(memory.buffer);
  }

  /** The memory as f32, rebuilt after growth. Take it after the last alloc of a step. */
  get f32(): Float32Array {
    if (this.f32View.buffer !== this.memory.buffer || this.f32View.length === 0) this.f32View = new Float32Array(this.memory.buffer);
    return this.f32View;
  }

  /** Bytes in use (allocated and not freed), for tests and the bench. */
  get bytesInUse(): number {
    let s = 0;
    for (const b of this.used.values()) s += b;
    return s;
  }

  /** A block of n f32 (uninitialised): its byte address. */
  alloc(n: number): number {
    const bytes = Math.max(ALIGN, Math.ceil((n * 4) / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.bytes >= bytes) {
        const ptr = b.ptr;
        if (b.bytes === bytes) this.free.splice(i, 1);
        else {
          b.ptr += bytes;
          b.bytes -= bytes;
        }
        this.used.set(ptr, bytes);
        return ptr;
      }
    }
    const ptr = this.top;
    this.ensure(ptr + bytes);
    this.top = ptr + bytes;
    this.used.set(ptr, bytes);
    return ptr;
  }

  /** A block of n f32 set to zero. */
  zeros(n: number): number {
    const p = this.alloc(n);
    this.zero(p, n);
    return p;
  }

  /** Sets n f32 at byte address p to zero. */
  clear(p: number, n: number): void {
    this.zero(p, n);
  }

  /** A block holding a copy of src[0, n). */
  put(src: Float32Array, n: number = src.length): number {
    const p = this.alloc(n);
    this.f32.set(n === src.length ? src : src.subarray(0, n), p >>> 2);
    return p;
  }

  /** A block holding a copy of the int32 array src (routing slots, expert indices). */
  putI32(src: Int32Array): number {
    const p = this.alloc(src.length);
    new Int32Array(this.memory.buffer, p, src.length).set(src);
    return p;
  }

  /** dst[0, n) = the block's contents. */
  get(dst: Float32Array, p: number, n: number = dst.length): void {
    dst.set(this.f32.subarray(p >>> 2, (p >>> 2) + n));
  }

  release(ptr: number): void {
    const bytes = this.used.get(ptr);
    if (bytes === undefined) return;
    this.used.delete(ptr);
    if (ptr + bytes === this.top) {
      this.top = ptr;
      // the block now at the top of the free list merges into the unallocated space
      const last = this.free[this.free.length - 1];
      if (last && last.ptr + last.bytes === this.top) {
        this.top = last.ptr;
        this.free.pop();
      }
      return;
    }
    // insert sorted by address, merging with neighbours
    let i = 0;
    while (i < this.free.length && this.free[i].ptr < ptr) i++;
    this.free.splice(i, 0, { ptr, bytes });
    const next = this.free[i + 1];
    if (next && ptr + bytes === next.ptr) {
      this.free[i].bytes += next.bytes;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.ptr + prev.bytes === ptr) {
      prev.bytes += this.free[i].bytes;
      this.free.splice(i, 1);
    }
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    const want = have / PAGE + pages;
    if (want > MAX_PAGES) throw new DitMoeError(`needs ${(end / 2 ** 20).toFixed(0)} MiB, more than the 4 GiB a wasm32 memory can address`, 'wasm memory');
    try {
      this.memory.grow(Math.min(Math.max(pages, 16), MAX_PAGES - have / PAGE));
    } catch (e) {
      throw new DitMoeError(`cannot grow to ${(end / 2 ** 20).toFixed(1)} MiB (${(e as Error).message})`, 'wasm memory');
    }
  }
}
