/**
 * The WebAssembly SIMD backend: `Kernels` (ref/kernels.ts) on the AssemblyScript kernels of
 * `wasm/assembly/`, same signatures and semantics (forward overwrites, backward accumulates).
 * Browser-safe: it takes the module's bytes or a compiled `WebAssembly.Module`; the Node
 * loader that reads `wasm/build/kernels.wasm` is `wasm/node.ts`.
 *
 * Memory: one arena in one `WebAssembly.Memory` (wasm/arena.ts). Weights are copied in
 * once and packed into 16-column panels (both for the forward product and, lazily, for
 * dx = dout·W); the cache is keyed by the weight's ArrayBuffer and byte range, so subarray
 * views of one buffer hit it too, and a block is freed when its buffer is collected.
 * `weightsChanged()` drops every packed weight (the optimiser updates weights in place);
 * as a safety net a fingerprint of 8 sampled elements is checked on every use, so a
 * weight changed in place without the call is repacked all the same.
 * Activations: on a shared memory (Node, one thread or more) `tensor(n)` hands out views of
 * the arena, which every kernel reads and writes in place; the model allocates its activations
 * that way, so a forward or a training step copies nothing in or out of the module but the
 * weights' packing. Any other Float32Array is copied in and out once per call, as is every
 * operand on a memory that is not shared (growing it would detach views). `mark`/`release`
 * free tensors newest first.
 */
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import { Arena } from './arena.js';
import { WeightCache, DEFAULT_WEIGHT_BUDGET } from './weightCache.js';
import { webAssembly, type WasmBytes, type WasmModule, type WasmMemory } from './webassembly.js';
import type { Call, ThreadPool, WorkerFunction } from './threads.js';
import type { SwigluWeights } from '../ref/moe.js';
import { withOperandChecks, dims, size } from '../ref/kernelChecks.js';
import type { SwigluCall, SwigluBackwardCall } from '../ref/swiglu.js';
import { dispatchByExpert } from '../ref/moeExperts.js';
import type { Conv2dShape } from '../ref/vae/conv2d.js';
import type { BackendHooks } from './hooks.js';
import { conv2dWasm } from './conv2d.js';
import { groupNormWasm } from './groupnorm.js';

/** The module's exports (wasm/assembly/*.ts): byte addresses and f32 counts. */
export interface KernelExports {
  heapBase(): number;
  packedASize(M: number, K: number): number;
  packedBSize(N: number, K: number): number;
  packARows(ap: number, a: number, lda: number, M: number, K: number): void;
  packACols(ap: number, a: number, lda: number, M: number, K: number): void;
  packBNK(bp: number, b: number, ldb: number, N: number, K: number): void;
  packBKN(bp: number, b: number, ldb: number, N: number, K: number): void;
  gemmPacked(c: number, ldc: number, ap: number, bp: number, M: number, N: number, K: number, tile: number, overwrite: number): void;
  gemmPackedCols(c: number, ldc: number, ap: number, bp: number, M: number, N: number, K: number, n0: number, n1: number, tile: number, overwrite: number): void;
  gemmNaive(c: number, ldc: number, a: number, lda: number, aTrans: number, b: number, ldb: number, bNK: number, M: number, N: number, K: number): void;
  fillRows(c: number, ldc: number, bias: number, M: number, N: number): void;
  colSumAcc(db: number, dout: number, M: number, N: number): void;
  layerNormForward(out: number, mean: number, rstd: number, x: number, w: number, b: number, M: number, D: number, eps: number): void;
  layerNormBackward(dx: number, dw: number, db: number, dout: number, x: number, w: number, mean: number, rstd: number, M: number, D: number): void;
  modulateForward(out: number, x: number, shift: number, scale: number, B: number, T: number, D: number): void;
  modulateBackward(dx: number, dshift: number, dscale: number, dout: number, x: number, scale: number, B: number, T: number, D: number): void;
  gatedResidualForward(x: number, f: number, gate: number, B: number, T: number, D: number): void;
  gatedResidualBackward(df: number, dgate: number, dout: number, f: number, gate: number, B: number, T: number, D: number): void;
  softmaxRows(s: number, rows: number, n: number, ld: number, scale: number): void;
  attentionHeadForward(out: number, ldo: number, p: number, q: number, k: number, v: number, ld: number, T: number, Dh: number, scale: number, ap: number, bp: number, tile: number): void;
  attentionHeadForwardTiled(out: number, ldo: number, q: number, k: number, v: number, ld: number, T: number, Dh: number, scale: number, R: number, s: number, ap: number, kp: number, vp: number, tile: number): void;
  attentionHeadBackward(dq: number, dk: number, dv: number, ldd: number, dout: number, ldo: number, q: number, k: number, v: number, ld: number, p: number, T: number, Dh: number, scale: number, dp: number, ap: number, bp: number, tile: number): void;
  attentionHeadNaive(out: number, ldo: number, p: number, q: number, k: number, v: number, ld: number, T: number, Dh: number, scale: number): void;
  expArray(out: number, x: number, n: number): void;
  siluForward(out: number, x: number, n: number): void;
  siluBackward(dx: number, dout: number, x: number, n: number): void;
  swigluGate(h: number, g: number, u: number, n: number): void;
  swigluGateBackward(dg: number, du: number, dh: number, g: number, u: number, n: number): void;
  packARowsGather(ap: number, x: number, ldx: number, slots: number, k: number, n: number, K: number): void;
  scatterAddRows(out: number, ldo: number, y: number, slots: number, weight: number, k: number, n: number, D: number): void;
  gatherRows(out: number, x: number, ldx: number, slots: number, k: number, n: number, D: number): void;
  scatterAddRowsBackward(dy: number, dweight: number, dout: number, ldo: number, y: number, slots: number, weight: number, k: number, n: number, D: number): void;
  expertForward(y: number, x: number, slots: number, k: number, n: number, D: number, F: number, bg: number, bu: number, bd: number, g: number, u: number, h: number, ap: number, tile: number): void;
  swigluRowsForward(y: number, g: number, u: number, x: number, n: number, D: number, F: number, bg: number, bu: number, bd: number, h: number, ap: number, tile: number): void;
  conv2dRows(out: number, x: number, bp: number, bias: number, C: number, H: number, W: number, O: number, kh: number, kw: number, stride: number, pT: number, pL: number, Ho: number, Wo: number, p0: number, p1: number, ap: number, cbuf: number, tile: number): void;
  groupNormGroups(out: number, x: number, w: number, b: number, C: number, S: number, G: number, eps: number, silu: number, g0: number, g1: number): void;
  swigluRowsBackward(dx: number, dwg: number, dwu: number, dwd: number, dout: number, x: number, g: number, u: number, n: number, D: number, F: number, bdT: number, bgT: number, buT: number, h: number, dh: number, dg: number, du: number, ap: number, apT: number, bpT: number, tile: number): void;
}

/** The wasm backend: the kernel interface plus its arena and raw exports (tests, bench). */
export interface WasmKernels extends Kernels {
  readonly arena: Arena;
  readonly exports: KernelExports;
  /** out[i] = silu(x[i]) and dx[i] += dout[i]·silu'(x[i]) (not in the interface; used by tests). */
  silu(out: Float32Array, x: Float32Array, n: number): void;
  siluBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, n: number): void;
  weightsChanged(): void;
  /** Packed weights in the module's memory, within a budget (wasm/weightCache.ts). */
  readonly weightCache: WeightCache;
  /** Threads in all (the calling one included). */
  readonly threads: number;
  /** Stops the worker threads, if any. */
  dispose(): void;
  /**
   * Starts timing every call into the module from the calling thread (the bench's profile:
   * where a forward spends its time); `stopProfile` returns calls and milliseconds per export.
   * Work that worker threads claim is not in it: profile on one thread.
   */
  startProfile(): void;
  stopProfile(): KernelProfile;
}

/** Calls and milliseconds per export of the kernels module. */
export type KernelProfile = Record<string, { calls: number; ms: number }>;

export interface WasmOptions {
  /** Threads in all, the calling one included (default 1); more need the Node loader. */
  threads?: number;
  /** Work (flops) below which a call stays on one thread; default 2e6. Tests set 0. */
  minParallelFlops?: number;
  /** Bytes the packed weights may take in the module's memory (default 3 GiB of its 4). */
  weightBudget?: number;
}

/** A minimal module using one v128 instruction: validates only where SIMD is supported. */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

const WHERE = 'wasm backend';

function api(): NonNullable<ReturnType<typeof webAssembly>> {
  const wa = webAssembly();
  if (!wa) throw new DitMoeError('WebAssembly is not available in this runtime', WHERE);
  return wa;
}

function checkSimd(): void {
  if (!api().validate(SIMD_PROBE)) throw new DitMoeError('WebAssembly SIMD (128-bit) is not supported by this runtime', WHERE);
}

function instantiate(module: WasmModule, memory: WasmMemory): KernelExports {
  let instance;
  try {
    instance = new (api().Instance)(module, { env: { memory } });
  } catch (e) {
    throw new DitMoeError(`cannot instantiate the kernels module (${(e as Error).message}); rebuild it with \`npm run build:wasm\``, WHERE);
  }
  const exports = instance.exports as unknown as KernelExports;
  if (typeof exports.gemmPacked !== 'function' || typeof exports.heapBase !== 'function') {
    throw new DitMoeError('the kernels module lacks its exports (gemmPacked, heapBase); rebuild it with `npm run build:wasm`', WHERE);
  }
  return exports;
}

function isModule(source: WasmBytes | WasmModule): source is WasmModule {
  return !(source instanceof ArrayBuffer) && !ArrayBuffer.isView(source);
}

function compile(source: WasmBytes | WasmModule): WasmModule {
  if (isModule(source)) return source;
  try {
    return new (api().Module)(source);
  } catch (e) {
    throw new DitMoeError(`the kernels module does not compile (${(e as Error).message}); rebuild it with \`npm run build:wasm\``, WHERE);
  }
}

/** The wasm backend (one thread) from the module's bytes or compiled module, synchronously. */
export function createWasmKernelsFrom(source: WasmBytes | WasmModule): WasmKernels {
  checkSimd();
  const module = compile(source);
  return createWasmKernelsOn(module, new (api().Memory)({ initial: 16, maximum: 65536 }), null);
}

/** The same, compiling asynchronously (what browsers require for modules over 4 KiB). */
export async function createWasmKernelsAsync(source: WasmBytes | WasmModule): Promise<WasmKernels> {
  checkSimd();
  let module: WasmModule;
  if (isModule(source)) module = source;
  else {
    try {
      module = await api().compile(source);
    } catch (e) {
      throw new DitMoeError(`the kernels module does not compile (${(e as Error).message}); rebuild it with \`npm run build:wasm\``, WHERE);
    }
  }
  return createWasmKernelsFrom(module);
}

/** A shared memory for the threads build (kernels-mt.wasm) and its workers. */
export function createSharedMemory(): WasmMemory {
  checkSimd();
  try {
    return new (api().Memory)({ initial: 16, maximum: 65536, shared: true });
  } catch (e) {
    throw new DitMoeError(`shared WebAssembly memory is not available (${(e as Error).message})`, WHERE);
  }
}

/**
 * The backend on a given memory: the thread loaders (wasm/node.ts) pass the shared-memory
 * module, its shared memory, and the pool of workers instantiated on both.
 */
export function createWasmKernelsOn(module: WasmModule, memory: WasmMemory, pool: ThreadPool | null, minParallelFlops = PARALLEL_FLOPS, weightBudget = DEFAULT_WEIGHT_BUDGET): WasmKernels {
  checkSimd();
  const exports = instantiate(module, memory);
  const arena = new Arena(memory, exports.heapBase(), (p, n) => exports.fillRows(p, n, 0, 1, n));
  return withOperandChecks(new WasmBackend(exports, arena, pool, minParallelFlops, weightBudget));
}

/** Below this much work a call stays on one thread (waking a worker costs microseconds). */
const PARALLEL_FLOPS = 2e6;

/** Indices of `work` from the largest to the smallest: threads claim the big calls first, so the last to finish is a small one. */
function largestFirst(work: number[]): number[] {
  return work.map((_, i) => i).sort((i, j) => work[j] - work[i]);
}

/** How an output block starts: the kernel overwrites it all, accumulates into zeros, or into its contents (+=). */
type OutputInit = 'none' | 'zero' | 'keep';

/**
 * Blocks of one kernel call, freed together when the call ends. Operands that live in the
 * module's memory (`Kernels.tensor`) are used in place; others are copied in, and outputs
 * copied back when the call succeeds. An output shares memory with no other operand of the
 * call: one that would is given a scratch block instead (so `out` may alias `x`, as with copies).
 */
class Scratch {
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

class WasmBackend implements WasmKernels {
  readonly name = 'wasm';
  /** Packed weights within their budget (wasm/weightCache.ts). */
  readonly weightCache: WeightCache;

  /** The 2×16 edge tile of each thread (index 0: the calling thread). */
  private tiles: number[];

  /** The module's exports, or timed wrappers of them while a profile runs. */
  exports: KernelExports;
  private profile: KernelProfile | null = null;

  constructor(
    private readonly rawExports: KernelExports,
    readonly arena: Arena,
    private pool: ThreadPool | null,
    private minParallelFlops: number,
    weightBudget = DEFAULT_WEIGHT_BUDGET,
  ) {
    this.exports = rawExports;
    this.weightCache = new WeightCache(arena, weightBudget, (w, N, K, form) => this.pack(w, N, K, form), (N, K, form) => 4 * (form === 'nk' ? rawExports.packedBSize(N, K) : rawExports.packedBSize(K, N)));
    this.tiles = Array.from({ length: this.threads }, () => arena.alloc(32));
    this.sharedMemory = typeof SharedArrayBuffer !== 'undefined' && arena.memory.buffer instanceof SharedArrayBuffer;
  }

  startProfile(): void {
    const table: KernelProfile = {};
    const timed: Record<string, unknown> = {};
    for (const [name, f] of Object.entries(this.rawExports as unknown as Record<string, unknown>)) {
      if (typeof f !== 'function') continue;
      timed[name] = (...args: number[]) => {
        const t0 = performance.now();
        try {
          return (f as (...a: number[]) => unknown)(...args);
        } finally {
          const row = (table[name] ??= { calls: 0, ms: 0 });
          row.calls++;
          row.ms += performance.now() - t0;
        }
      };
    }
    this.exports = timed as unknown as KernelExports;
    this.profile = table;
  }

  stopProfile(): KernelProfile {
    const table = this.profile ?? {};
    this.exports = this.rawExports;
    this.profile = null;
    return table;
  }

  /** Whether the memory is shared: its views survive growth, so tensors can be views. */
  private readonly sharedMemory: boolean;
  /** Arena blocks of the tensors handed out, oldest first. */
  private tensors: number[] = [];
  /** The memory's buffers that tensors were cut from (a shared memory's buffer object changes as it grows). */
  private ownBuffers = new WeakSet<ArrayBufferLike>();

  /** Whether `a` is a view of this backend's memory, which its kernels can use in place. */
  private resident = (a: Float32Array): boolean => this.ownBuffers.has(a.buffer);

  /**
   * A zeroed view of n floats of the module's memory when that memory is shared (Node: one and
   * more threads); growing a shared memory keeps old views valid. A memory that is not shared
   * detaches its views when it grows, so there a plain Float32Array (copied in and out per call).
   */
  tensor(n: number): Float32Array {
    if (!this.sharedMemory) return new Float32Array(n);
    const p = this.arena.zeros(n);
    this.tensors.push(p);
    const buffer = this.arena.memory.buffer;
    this.ownBuffers.add(buffer);
    return new Float32Array(buffer, p, n);
  }

  mark(): number {
    return this.tensors.length;
  }

  release(mark: number): void {
    if (!Number.isInteger(mark) || mark < 0 || mark > this.tensors.length) throw new DitMoeError(`mark ${mark} is not one of this backend's (${this.tensors.length} tensors handed out)`, 'wasm.release');
    while (this.tensors.length > mark) this.arena.release(this.tensors.pop()!);
  }

  get threads(): number {
    return this.pool ? this.pool.workers + 1 : 1;
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
  }

  /** Threads that share `flops` of work: all of them when it is worth waking a worker. */
  private parts(flops: number): number {
    return flops < this.minParallelFlops ? 1 : this.threads;
  }

  /**
   * Runs independent calls on all threads (each claims the next one); an argument -(s + 1)
   * stands for slot s of the executing thread's row of `scratch`.
   */
  private runCalls(calls: Call[], scratch: number[][]): void {
    const e = this.exports as unknown as Record<string, (...args: number[]) => void>;
    const self = ([fn, args]: Call, t: number) => e[fn](...args.map((v) => (v < 0 ? scratch[t][-v - 1] : v)));
    if (!this.pool || scratch.length === 1) for (const call of calls) self(call, 0);
    else this.pool.run(calls, scratch, self);
  }

  /**
   * C[M,N] (row stride ldc) = A·B (overwrite: C's old contents are never read) or += A·B, from
   * packed operands, in blocks of columns shared by the threads.
   */
  private gemm(c: number, ldc: number, ap: number, bp: number, M: number, N: number, K: number, overwrite: boolean): void {
    const panels = Math.ceil(N / 16);
    const parts = this.parts(2 * M * N * K);
    const ow = overwrite ? 1 : 0;
    if (parts === 1 || panels === 1) {
      this.exports.gemmPacked(c, ldc, ap, bp, M, N, K, this.tiles[0], ow);
      return;
    }
    // about 6 blocks per thread: small enough to balance, large enough to amortise a claim
    const per = Math.max(1, Math.ceil(panels / (6 * parts)));
    const calls: Call[] = [];
    for (let p = 0; p < panels; p += per) calls.push(['gemmPackedCols', [c, ldc, ap, bp, M, N, K, p * 16, Math.min(N, (p + per) * 16), -1, ow]]);
    this.runCalls(
      calls,
      this.tiles.map((t) => [t]),
    );
  }

  /**
   * A row-wise or elementwise kernel over [0, n) cut into one range per thread (range starts
   * aligned to `align`: row pairs of packed A, 16-column panels of packed B) when `work` is
   * worth waking a worker; args(lo, hi) gives the call's arguments for one range.
   */
  private split(fn: WorkerFunction, n: number, align: number, work: number, args: (lo: number, hi: number) => number[]): void {
    const parts = this.parts(work);
    const per = Math.ceil(n / parts / align) * align;
    if (parts === 1 || per >= n) {
      (this.exports[fn] as (...a: number[]) => void)(...args(0, n));
      return;
    }
    const calls: Call[] = [];
    for (let lo = 0; lo < n; lo += per) calls.push([fn, args(lo, Math.min(n, lo + per))]);
    this.runCalls(
      calls,
      Array.from({ length: parts }, () => []),
    );
  }

  /** h = silu(g) ⊙ u over n elements, shared by the threads. */
  private gate(h: number, g: number, u: number, n: number): void {
    this.split('swigluGate', n, 4, 8 * n, (lo, hi) => [h + lo * 4, g + lo * 4, u + lo * 4, hi - lo]);
  }

  /** dg, du from dh, g, u over n elements, shared by the threads. */
  private gateBackward(dg: number, du: number, dh: number, g: number, u: number, n: number): void {
    this.split('swigluGateBackward', n, 4, 12 * n, (lo, hi) => [dg + lo * 4, du + lo * 4, dh + lo * 4, g + lo * 4, u + lo * 4, hi - lo]);
  }

  /** packARows by row pairs, shared by the threads. */
  private packRows(ap: number, a: number, lda: number, M: number, K: number): void {
    this.split('packARows', M, 2, 2 * M * K, (lo, hi) => [ap + lo * K * 4, a + lo * lda * 4, lda, hi - lo, K]);
  }

  /** packACols (A given transposed) by row pairs of A, shared by the threads. */
  private packCols(ap: number, a: number, lda: number, M: number, K: number): void {
    this.split('packACols', M, 2, 2 * M * K, (lo, hi) => [ap + lo * K * 4, a + lo * 4, lda, hi - lo, K]);
  }

  /** packBKN by 16-column panels, shared by the threads. */
  private packKN(bp: number, b: number, ldb: number, N: number, K: number): void {
    this.split('packBKN', N, 16, 2 * N * K, (lo, hi) => [bp + lo * K * 4, b + lo * 4, ldb, hi - lo, K]);
  }

  weightsChanged(): void {
    this.weightCache.clear();
  }

  /** Packed panels of the weight w [N, K]: 'nk' for x·wᵀ, 'kn' for dout·w (held until the call ends). */
  private packed(w: Float32Array, N: number, K: number, form: 'nk' | 'kn'): number {
    return this.weightCache.get(w, N, K, form);
  }

  private pack(w: Float32Array, N: number, K: number, form: 'nk' | 'kn'): number {
    const e = this.exports;
    const a = this.arena;
    const bp = a.alloc(form === 'nk' ? e.packedBSize(N, K) : e.packedBSize(K, N));
    const tmp = a.put(w, N * K);
    if (form === 'nk') e.packBNK(bp, tmp, K, N, K); // B[k,n] = w[n,k]
    else e.packBKN(bp, tmp, K, K, N); // B[n,k] = w[n,k]: reduction over N, output K
    a.release(tmp);
    return bp;
  }

  /** Runs body with scratch blocks that are all freed afterwards, even on a throw. */
  private scratch<T>(body: (s: Scratch) => T): T {
    const s = new Scratch(this.arena, this.resident);
    try {
      const result = body(s);
      s.finish();
      return result;
    } finally {
      s.releaseAll();
      this.weightCache.unpin();
    }
  }

  /** What the operators in their own files (wasm/conv2d.ts, wasm/groupnorm.ts) use of this backend. */
  private get hooks(): BackendHooks {
    return (this.hooksMade ??= {
      exports: () => this.exports as unknown as ReturnType<BackendHooks['exports']>,
      arena: this.arena,
      threads: this.threads,
      packedWeight: (w, N, K) => this.packed(w, N, K, 'nk'),
      scratch: (body) => this.scratch(body),
      parts: (flops) => this.parts(flops),
      runCalls: (calls, scratch) => this.runCalls(calls, scratch),
      tiles: () => this.tiles,
    });
  }
  private hooksMade?: BackendHooks;

  conv2d(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, shape: Conv2dShape): void {
    conv2dWasm(this.hooks, out, x, w, b, shape);
  }

  groupNorm(out: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, N: number, C: number, S: number, G: number, eps: number, silu: boolean): void {
    groupNormWasm(this.hooks, out, x, w, b, N, C, S, G, eps, silu);
  }

  // out[M,N] = x[M,K]·w[N,K]ᵀ + b[N]
  linear(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, M: number, K: number, N: number): void {
    if (M * N === 0) return;
    if (K === 0) {
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) out[m * N + n] = b ? b[n] : 0;
      return;
    }
    const e = this.exports;
    const bp = this.packed(w, N, K, 'nk');
    this.scratch((s) => {
      const px = s.input(x, M * K);
      const pb = b ? s.input(b, N) : 0;
      const pc = s.output(out, M * N, 'none');
      const ap = s.alloc(e.packedASize(M, K));
      if (pb) e.fillRows(pc, N, pb, M, N); // then the product adds to the bias rows
      this.packRows(ap, px, K, M, K);
      this.gemm(pc, N, ap, bp, M, N, K, !pb);
    });
  }

  // dx[M,K] += dout·w, dw[N,K] += doutᵀ·x, db[N] += Σ_m dout
  linearBackward(dx: Float32Array | null, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number): void {
    if (M === 0 || N === 0) return;
    const e = this.exports;
    const bpW = dx && K > 0 ? this.packed(w, N, K, 'kn') : 0;
    this.scratch((s) => {
      const pd = s.input(dout, M * N);
      if (dx && K > 0) {
        const pdx = s.output(dx, M * K, 'keep');
        const ap = s.alloc(e.packedASize(M, N));
        this.packRows(ap, pd, N, M, N);
        this.gemm(pdx, K, ap, bpW, M, K, N, false); // dx += dout·w: reduction over N
      }
      if (dw && K > 0) {
        const px = s.input(x, M * K);
        const pdw = s.output(dw, N * K, 'keep');
        const ap = s.alloc(e.packedASize(N, M));
        const bp = s.alloc(e.packedBSize(K, M));
        this.packCols(ap, pd, N, N, M); // A = doutᵀ [N, M]
        this.packKN(bp, px, K, K, M); // B = x [M, K]
        this.gemm(pdw, K, ap, bp, N, K, M, false);
      }
      if (db) {
        const pdb = s.output(db, N, 'keep');
        e.colSumAcc(pdb, pd, M, N);
      }
    });
  }

  // out[M,D] = (x - mean)·rstd (· w + b)
  layerNorm(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, M: number, D: number, eps: number): void {
    if (M === 0) return;
    this.scratch((s) => {
      const px = s.input(x, M * D);
      const pw = w ? s.input(w, D) : 0;
      const pb = b ? s.input(b, D) : 0;
      const po = s.output(out, M * D, 'none');
      const pm = s.output(mean, M, 'none');
      const pr = s.output(rstd, M, 'none');
      // rows are independent: shared by the threads
      this.split('layerNormForward', M, 1, 8 * M * D, (lo, hi) => [po + lo * D * 4, pm + lo * 4, pr + lo * 4, px + lo * D * 4, pw, pb, hi - lo, D, eps]);
    });
  }

  layerNormBackward(dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, M: number, D: number): void {
    if (M === 0) return;
    const e = this.exports;
    this.scratch((s) => {
      const pdx = s.output(dx, M * D, 'keep');
      const pdo = s.input(dout, M * D);
      const px = s.input(x, M * D);
      const pm = s.input(mean, M);
      const pr = s.input(rstd, M);
      const pw = w ? s.input(w, D) : 0;
      const pdw = dw ? s.output(dw, D, 'keep') : 0;
      const pdb = db ? s.output(db, D, 'keep') : 0;
      // rows are independent unless dw, db sum over them: then one thread
      if (dw || db) e.layerNormBackward(pdx, pdw, pdb, pdo, px, pw, pm, pr, M, D);
      else this.split('layerNormBackward', M, 1, 10 * M * D, (lo, hi) => [pdx + lo * D * 4, 0, 0, pdo + lo * D * 4, px + lo * D * 4, pw, pm + lo * 4, pr + lo * 4, hi - lo, D]);
    });
  }

  // out[B,T,D] = x·(1 + scale) + shift, sequences shared by the threads
  modulate(out: Float32Array, x: Float32Array, shift: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
    if (B * T * D === 0) return;
    this.scratch((s) => {
      const [px, psh, psc] = [s.input(x, B * T * D), s.input(shift, B * D), s.input(scale, B * D)];
      const po = s.output(out, B * T * D, 'none');
      this.split('modulateForward', B, 1, 3 * B * T * D, (lo, hi) => [po + lo * T * D * 4, px + lo * T * D * 4, psh + lo * D * 4, psc + lo * D * 4, hi - lo, T, D]);
    });
  }

  // dx += dy·(1 + scale), dshift[b] += Σ_t dy, dscale[b] += Σ_t dy·x
  modulateBackward(dx: Float32Array, dshift: Float32Array, dscale: Float32Array, dout: Float32Array, x: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
    if (B * T * D === 0) return;
    this.scratch((s) => {
      const [pdo, px, psc] = [s.input(dout, B * T * D), s.input(x, B * T * D), s.input(scale, B * D)];
      const [pdx, pdsh, pdsc] = [s.output(dx, B * T * D, 'keep'), s.output(dshift, B * D, 'keep'), s.output(dscale, B * D, 'keep')];
      this.split('modulateBackward', B, 1, 6 * B * T * D, (lo, hi) => [pdx + lo * T * D * 4, pdsh + lo * D * 4, pdsc + lo * D * 4, pdo + lo * T * D * 4, px + lo * T * D * 4, psc + lo * D * 4, hi - lo, T, D]);
    });
  }

  // x += gate · f
  gatedResidual(x: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
    if (B * T * D === 0) return;
    this.scratch((s) => {
      const [pf, pg] = [s.input(f, B * T * D), s.input(gate, B * D)];
      const px = s.output(x, B * T * D, 'keep');
      this.split('gatedResidualForward', B, 1, 2 * B * T * D, (lo, hi) => [px + lo * T * D * 4, pf + lo * T * D * 4, pg + lo * D * 4, hi - lo, T, D]);
    });
  }

  // df += dy·gate, dgate[b] += Σ_t dy·f
  gatedResidualBackward(df: Float32Array, dgate: Float32Array, dout: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
    if (B * T * D === 0) return;
    this.scratch((s) => {
      const [pdo, pf, pg] = [s.input(dout, B * T * D), s.input(f, B * T * D), s.input(gate, B * D)];
      const [pdf, pdg] = [s.output(df, B * T * D, 'keep'), s.output(dgate, B * D, 'keep')];
      this.split('gatedResidualBackward', B, 1, 4 * B * T * D, (lo, hi) => [pdf + lo * T * D * 4, pdg + lo * D * 4, pdo + lo * T * D * 4, pf + lo * T * D * 4, pg + lo * D * 4, hi - lo, T, D]);
    });
  }

  // out[B,T,H·Dh] = softmax(q kᵀ/√Dh) v per head, from qkv [B, T, 3, H, Dh]
  attention(out: Float32Array, probs: Float32Array | null, qkv: Float32Array, B: number, T: number, H: number, Dh: number): void {
    const D = H * Dh;
    if (B * T * H === 0) return;
    const e = this.exports;
    const scale = 1 / Math.sqrt(Dh);
    const L = Math.max(T, Dh);
    // query rows per tile of the fused eval forward (R·T·4 bytes of S/P: 16 KiB at T = 256)
    const R = 16;
    this.scratch((s) => {
      const pq = s.input(qkv, B * T * 3 * D);
      const po = s.output(out, B * T * D, 'none');
      const pp = probs ? s.output(probs, B * H * T * T, 'none') : 0;
      const parts = this.parts(4 * B * H * T * T * Dh);
      // each thread its own scratch. With probs (training), P goes straight to its slice:
      // packed A, packed B, the edge tile. Without (eval, the fused forward): the [R, T] tile of
      // S and P, packed A of R rows, packed K, packed V, the edge tile: O(R·T + T·Dh), not T×T.
      const scratch = Array.from({ length: parts }, () =>
        probs
          ? [s.alloc(e.packedASize(T, L)), s.alloc(e.packedBSize(L, L)), s.alloc(32)]
          : [s.alloc(R * T), s.alloc(e.packedASize(R, L)), s.alloc(e.packedBSize(T, Dh)), s.alloc(e.packedBSize(Dh, T)), s.alloc(32)],
      );
      const calls: Call[] = [];
      for (let j = 0; j < B * H; j++) {
        const b = Math.floor(j / H);
        const h = j % H;
        const q = pq + (b * T * 3 * D + h * Dh) * 4;
        const o = po + (b * T * D + h * Dh) * 4;
        if (probs) calls.push(['attentionHeadForward', [o, D, pp + j * T * T * 4, q, q + D * 4, q + 2 * D * 4, 3 * D, T, Dh, scale, -1, -2, -3]]);
        else calls.push(['attentionHeadForwardTiled', [o, D, q, q + D * 4, q + 2 * D * 4, 3 * D, T, Dh, scale, R, -1, -2, -3, -4, -5]]);
      }
      this.runCalls(calls, scratch);
    });
  }

  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, probs: Float32Array, B: number, T: number, H: number, Dh: number): void {
    const D = H * Dh;
    if (B * T * H * Dh === 0) return;
    const e = this.exports;
    const scale = 1 / Math.sqrt(Dh);
    const L = Math.max(T, Dh);
    this.scratch((s) => {
      const pdq = s.output(dqkv, B * T * 3 * D, 'keep');
      const pdo = s.input(dout, B * T * D);
      const pq = s.input(qkv, B * T * 3 * D);
      const pp = s.input(probs, B * H * T * T);
      const parts = this.parts(8 * B * H * T * T * Dh);
      const scratch = Array.from({ length: parts }, () => [s.alloc(T * T), s.alloc(e.packedASize(L, L)), s.alloc(e.packedBSize(L, L)), s.alloc(32)]);
      const calls: Call[] = [];
      for (let j = 0; j < B * H; j++) {
        const b = Math.floor(j / H);
        const h = j % H;
        const off = (b * T * 3 * D + h * Dh) * 4;
        const dq = pdq + off;
        const q = pq + off;
        // heads write disjoint columns of dqkv: no two threads touch the same element
        calls.push(['attentionHeadBackward', [dq, dq + D * 4, dq + 2 * D * 4, 3 * D, pdo + (b * T * D + h * Dh) * 4, D, q, q + D * 4, q + 2 * D * 4, 3 * D, pp + j * T * T * 4, T, Dh, scale, -1, -2, -3, -4]]);
      }
      this.runCalls(calls, scratch);
    });
  }

  // out[M,D] = (silu(x·Wgᵀ) ⊙ (x·Wuᵀ))·Wdᵀ
  swiglu(out: Float32Array, gate: Float32Array | null, up: Float32Array | null, x: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
    if (M * D === 0) return;
    if (F === 0) {
      out.fill(0, 0, M * D);
      return;
    }
    const e = this.exports;
    const bg = this.packed(wg, F, D, 'nk');
    const bu = this.packed(wu, F, D, 'nk');
    const bd = this.packed(wd, D, F, 'nk');
    this.scratch((s) => {
      const px = s.input(x, M * D);
      const pg = gate ? s.output(gate, M * F, 'none') : s.alloc(M * F);
      const pu = up ? s.output(up, M * F, 'none') : s.alloc(M * F);
      const ph = s.alloc(M * F);
      const po = s.output(out, M * D, 'none');
      const ap = s.alloc(e.packedASize(M, Math.max(D, F)));
      this.packRows(ap, px, D, M, D);
      this.gemm(pg, F, ap, bg, M, F, D, true); // g = x Wgᵀ
      this.gemm(pu, F, ap, bu, M, F, D, true); // u = x Wuᵀ
      this.gate(ph, pg, pu, M * F); // h = silu(g) ⊙ u
      this.packRows(ap, ph, F, M, F);
      this.gemm(po, D, ap, bd, M, D, F, true); // y = h Wdᵀ
    });
  }

  // out[r, :] = x[slots[r] / k, :]
  gatherRows(out: Float32Array, x: Float32Array, slots: Int32Array, k: number, D: number): void {
    const [n, M] = [slots.length, D > 0 ? Math.floor(x.length / D) : 0];
    if (n * D === 0) return;
    this.scratch((s) => {
      const [px, ps] = [s.input(x, M * D), s.putI32(slots)];
      this.exports.gatherRows(s.output(out, n * D, 'none'), px, D, ps, k, n, D);
    });
  }

  // out[slots[r] / k, :] += weight[slots[r]] · y[r, :]
  scatterAddRows(out: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array | null, k: number, D: number): void {
    const [n, M] = [slots.length, D > 0 ? Math.floor(out.length / D) : 0];
    if (n * D === 0) return;
    this.scratch((s) => {
      const [py, ps, pw] = [s.input(y, n * D), s.putI32(slots), weight ? s.input(weight, weight.length) : 0];
      this.exports.scatterAddRows(s.output(out, M * D, 'keep'), D, py, ps, pw, k, n, D);
    });
  }

  // dy[r, :] = weight[s]·dout[m, :], dweight[s] = dout[m, :]·y[r, :]
  scatterAddRowsBackward(dy: Float32Array, dweight: Float32Array, dout: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array, k: number, D: number): void {
    const [n, M] = [slots.length, D > 0 ? Math.floor(dout.length / D) : 0];
    if (n === 0) return;
    if (D === 0) {
      for (const s of slots) dweight[s] = 0; // an empty dot product
      return;
    }
    this.scratch((s) => {
      const [pdo, py, pw, ps] = [s.input(dout, M * D), s.input(y, n * D), s.input(weight, weight.length), s.putI32(slots)];
      const [pdy, pdw] = [s.output(dy, n * D, 'none'), s.output(dweight, dweight.length, 'keep')];
      this.exports.scatterAddRowsBackward(pdy, pdw, pdo, D, py, ps, pw, k, n, D);
    });
  }

  /**
   * out[m,:] = Σ_j weight[m,j] · Expert_{idx[m,j]}(x[m,:]): x, the slots and the weights copied
   * in once; each expert whole in one call (`expertForward`: its rows gathered straight into
   * its packed A, the SwiGLU on the packed GEMM); then the weighted rows scatter-added in
   * expert order (the order of ref), out copied back once. On several threads the experts are
   * shared out whole when none has more rows than a thread's share, else each expert's
   * products are split by columns as every product is.
   */
  moeExperts(out: Float32Array, x: Float32Array, topkIdx: Int32Array, topkWeight: Float32Array, experts: SwigluWeights[], M: number, D: number, F: number, k: number): void {
    const E = experts.length;
    if (M * D === 0) return;
    if (F === 0) {
      out.fill(0, 0, M * D);
      return;
    }
    const e = this.exports;
    const groups = dispatchByExpert(topkIdx.subarray(0, M * k), E)
      .map((slots, i) => ({ slots, w: experts[i] }))
      .filter((g) => g.slots.length > 0);
    const packed = groups.map(({ w }) => ({ g: this.packed(w.gate, F, D, 'nk'), u: this.packed(w.up, F, D, 'nk'), d: this.packed(w.down, D, F, 'nk') }));
    const nMax = Math.max(...groups.map((g) => g.slots.length));
    const parts = this.parts(6 * M * k * D * F);
    const whole = parts === 1 || nMax * parts <= M * k; // every expert within a thread's share
    this.scratch((s) => {
      const px = s.input(x, M * D);
      const pw = s.input(topkWeight, M * k);
      const po = s.output(out, M * D, 'zero');
      const slots = groups.map((g) => s.putI32(g.slots));
      const ys = groups.map((g) => s.alloc(g.slots.length * D));
      if (whole) {
        // per thread: g, u, h [nMax, F], packed A, the edge tile
        const scratch = Array.from({ length: parts }, (_, t) => [s.alloc(nMax * F), s.alloc(nMax * F), s.alloc(nMax * F), s.alloc(e.packedASize(nMax, Math.max(D, F))), this.tiles[t]]);
        const calls: Call[] = largestFirst(groups.map((g) => g.slots.length)).map((i) => ['expertForward', [ys[i], px, slots[i], k, groups[i].slots.length, D, F, packed[i].g, packed[i].u, packed[i].d, -1, -2, -3, -4, -5]]);
        this.runCalls(calls, scratch);
      } else {
        const [pg, pu, ph] = [s.alloc(nMax * F), s.alloc(nMax * F), s.alloc(nMax * F)];
        const ap = s.alloc(e.packedASize(nMax, Math.max(D, F)));
        groups.forEach((g, i) => {
          const n = g.slots.length;
          e.packARowsGather(ap, px, D, slots[i], k, n, D); // A = x[slots / k]
          this.gemm(pg, F, ap, packed[i].g, n, F, D, true); // g = A Wgᵀ
          this.gemm(pu, F, ap, packed[i].u, n, F, D, true); // u = A Wuᵀ
          this.gate(ph, pg, pu, n * F); // h = silu(g) ⊙ u
          this.packRows(ap, ph, F, n, F);
          this.gemm(ys[i], D, ap, packed[i].d, n, D, F, true); // y = h Wdᵀ
        });
      }
      groups.forEach((g, i) => e.scatterAddRows(po, D, ys[i], slots[i], pw, k, g.slots.length, D)); // out[slot / k] += weight · y
    });
  }

  /**
   * Whether independent experts (work ∝ rows·width each) can run whole, one per thread: more
   * than one, on more than one thread, none with more than a thread's share, and no call writing
   * memory that another call uses (each call's operands: [array, written]).
   */
  private sideBySide(work: number[], operands: [Float32Array | null, boolean][][], flops: number): boolean {
    const parts = this.parts(flops);
    const total = work.reduce((p, q) => p + q, 0);
    if (parts === 1 || work.length < 2 || Math.max(...work) * parts > total) return false;
    // views of this memory compare by address whatever buffer object they were cut from (it changes as the memory grows)
    const where = (a: Float32Array) => (this.resident(a) ? this.arena.memory : a.buffer);
    const ranges = operands.flatMap((ops, call) => ops.filter(([a]) => a !== null).map(([a, write]) => ({ call, write, buffer: where(a!), lo: a!.byteOffset, hi: a!.byteOffset + a!.byteLength })));
    for (const p of ranges)
      for (const q of ranges) if (p.call < q.call && (p.write || q.write) && p.buffer === q.buffer && p.lo < q.hi && q.lo < p.hi) return false;
    return true;
  }

  /**
   * Experts side by side, each whole on one thread (`swigluRowsForward`), largest first; when
   * they cannot be (one thread, one expert, one too large, shared outputs), one after the other,
   * each product split between the threads (`swiglu`).
   */
  swigluExperts(calls: SwigluCall[], D: number): void {
    const live = calls.filter((c) => c.M * D > 0 && c.F > 0);
    const flops = live.reduce((p, c) => p + 6 * c.M * D * c.F, 0);
    const ops = live.map((c): [Float32Array | null, boolean][] => [[c.out, true], [c.gate, true], [c.up, true], [c.x, false]]);
    if (!this.sideBySide(live.map((c) => c.M * c.F), ops, flops)) {
      for (const c of calls) this.swiglu(c.out, c.gate, c.up, c.x, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
      return;
    }
    const e = this.exports;
    const packed = live.map((c) => [this.packed(c.w.gate, c.F, D, 'nk'), this.packed(c.w.up, c.F, D, 'nk'), this.packed(c.w.down, D, c.F, 'nk')]);
    const nMax = Math.max(...live.map((c) => c.M));
    const fMax = Math.max(...live.map((c) => c.F));
    this.scratch((s) => {
      const args = live.map((c, i) => {
        const px = s.input(c.x, c.M * D);
        const pg = c.gate ? s.output(c.gate, c.M * c.F, 'none') : s.alloc(c.M * c.F);
        const pu = c.up ? s.output(c.up, c.M * c.F, 'none') : s.alloc(c.M * c.F);
        const po = s.output(c.out, c.M * D, 'none');
        return [po, pg, pu, px, c.M, D, c.F, ...packed[i], -1, -2, -3];
      });
      // per thread: h [nMax, fMax], packed A, the edge tile
      const scratch = Array.from({ length: this.threads }, (_, t) => [s.alloc(nMax * fMax), s.alloc(e.packedASize(nMax, Math.max(D, fMax))), this.tiles[t]]);
      this.runCalls(
        largestFirst(live.map((c) => c.M * c.F)).map((i): Call => ['swigluRowsForward', args[i]]),
        scratch,
      );
    });
  }

  /** Backward of swigluExperts (accumulates): side by side as the forward, or one after the other. */
  swigluExpertsBackward(calls: SwigluBackwardCall[], D: number): void {
    const live = calls.filter((c) => c.M * D * c.F > 0);
    const flops = live.reduce((p, c) => p + 12 * c.M * D * c.F, 0);
    const ops = live.map((c): [Float32Array | null, boolean][] => [[c.dx, true], [c.dw.gate, true], [c.dw.up, true], [c.dw.down, true], [c.dout, false], [c.x, false], [c.gate, false], [c.up, false]]);
    if (!this.sideBySide(live.map((c) => c.M * c.F), ops, flops)) {
      for (const c of calls) this.swigluBackward(c.dx, c.dw.gate, c.dw.up, c.dw.down, c.dout, c.x, c.gate, c.up, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
      return;
    }
    const e = this.exports;
    const packed = live.map((c) => [this.packed(c.w.down, D, c.F, 'kn'), this.packed(c.w.gate, c.F, D, 'kn'), this.packed(c.w.up, c.F, D, 'kn')]);
    const nMax = Math.max(...live.map((c) => c.M));
    const L = Math.max(D, ...live.map((c) => c.F));
    this.scratch((s) => {
      const args = live.map((c, i) => {
        const [M, F] = [c.M, c.F];
        const [pdo, px, pg, pu] = [s.input(c.dout, M * D), s.input(c.x, M * D), s.input(c.gate, M * F), s.input(c.up, M * F)];
        const pdx = s.output(c.dx, M * D, 'keep');
        const [pdwg, pdwu, pdwd] = [s.output(c.dw.gate, F * D, 'keep'), s.output(c.dw.up, F * D, 'keep'), s.output(c.dw.down, D * F, 'keep')];
        return [pdx, pdwg, pdwu, pdwd, pdo, px, pg, pu, M, D, F, ...packed[i], -1, -2, -3, -4, -5, -6, -7, -8];
      });
      // per thread: h, dh, dg, du [nMax, L]; packed A, packed Aᵀ, packed B; the edge tile
      const scratch = Array.from({ length: this.threads }, (_, t) => [
        ...[0, 1, 2, 3].map(() => s.alloc(nMax * L)),
        s.alloc(e.packedASize(nMax, L)),
        s.alloc(e.packedASize(L, nMax)),
        s.alloc(e.packedBSize(L, nMax)),
        this.tiles[t],
      ]);
      this.runCalls(
        largestFirst(live.map((c) => c.M * c.F)).map((i): Call => ['swigluRowsBackward', args[i]]),
        scratch,
      );
    });
  }

  /**
   * Backward of swiglu (accumulates), from the saved g, u:
   *   dh = dy·Wd, dWd += dyᵀ·h; dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g);
   *   dx += dg·Wg + du·Wu, dWg += dgᵀ·x, dWu += duᵀ·x
   */
  swigluBackward(dx: Float32Array, dwg: Float32Array, dwu: Float32Array, dwd: Float32Array, dout: Float32Array, x: Float32Array, gate: Float32Array, up: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
    if (M * D * F === 0) return;
    const e = this.exports;
    const bdT = this.packed(wd, D, F, 'kn');
    const bgT = this.packed(wg, F, D, 'kn');
    const buT = this.packed(wu, F, D, 'kn');
    const n = M * F;
    this.scratch((s) => {
      const pdo = s.input(dout, M * D);
      const px = s.input(x, M * D);
      const pg = s.input(gate, n);
      const pu = s.input(up, n);
      const ph = s.alloc(n);
      const pdh = s.alloc(n);
      const ap = s.alloc(e.packedASize(M, Math.max(D, F)));
      const apT = s.alloc(e.packedASize(Math.max(D, F), M));
      const bpT = s.alloc(e.packedBSize(Math.max(D, F), M));
      const pdg = s.alloc(n);
      const pdu = s.alloc(n);
      const pdx = s.output(dx, M * D, 'keep');
      const pdwg = s.output(dwg, F * D, 'keep');
      const pdwu = s.output(dwu, F * D, 'keep');
      const pdwd = s.output(dwd, D * F, 'keep');
      this.gate(ph, pg, pu, n); // h = silu(g) ⊙ u, recomputed
      this.packRows(ap, pdo, D, M, D);
      this.gemm(pdh, F, ap, bdT, M, F, D, true); // dh = dy·Wd
      this.packCols(apT, pdo, D, D, M);
      this.packKN(bpT, ph, F, F, M);
      this.gemm(pdwd, F, apT, bpT, D, F, M, false); // dWd += dyᵀ·h
      this.gateBackward(pdg, pdu, pdh, pg, pu, n);
      this.packRows(ap, pdg, F, M, F);
      this.gemm(pdx, D, ap, bgT, M, D, F, false); // dx += dg·Wg
      this.packRows(ap, pdu, F, M, F);
      this.gemm(pdx, D, ap, buT, M, D, F, false); // dx += du·Wu
      this.packKN(bpT, px, D, D, M); // B = x [M, D]
      this.packCols(apT, pdg, F, F, M);
      this.gemm(pdwg, D, apT, bpT, F, D, M, false); // dWg += dgᵀ·x
      this.packCols(apT, pdu, F, F, M);
      this.gemm(pdwu, D, apT, bpT, F, D, M, false); // dWu += duᵀ·x
    });
  }

  silu(out: Float32Array, x: Float32Array, n: number): void {
    dims('wasm.silu', n);
    size('wasm.silu', 'out', out, n), size('wasm.silu', 'x', x, n);
    this.scratch((s) => {
      const px = s.input(x, n);
      const po = s.output(out, n, 'none');
      this.exports.siluForward(po, px, n);
    });
  }

  siluBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, n: number): void {
    dims('wasm.siluBackward', n);
    size('wasm.siluBackward', 'dx', dx, n), size('wasm.siluBackward', 'dout', dout, n), size('wasm.siluBackward', 'x', x, n);
    this.scratch((s) => {
      const pdx = s.output(dx, n, 'keep');
      const pdo = s.input(dout, n);
      const px = s.input(x, n);
      this.exports.siluBackward(pdx, pdo, px, n);
    });
  }
}
