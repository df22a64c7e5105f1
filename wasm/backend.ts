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
 *
 * This file holds what every operator shares: loading, memory, tensors, weights, threads, and
 * the dispatch of each `Kernels` method to its operator in wasm/ops/<op>.ts (the twin of
 * wasm/assembly/<op>.ts), which runs through `BackendHooks` (wasm/hooks.ts). The per-call
 * scratch space is wasm/scratch.ts, the split of a call between threads wasm/parallel.ts.
 */
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import { Arena } from './arena.js';
import { WeightCache, DEFAULT_WEIGHT_BUDGET } from './weightCache.js';
import { webAssembly, type WasmBytes, type WasmModule, type WasmMemory } from './webassembly.js';
import type { Call, ThreadPool } from './threads.js';
import type { SwigluWeights, SwigluCall, SwigluBackwardCall } from '../ref/swiglu.js';
import { withOperandChecks } from '../ref/kernelChecks.js';
import type { Conv2dShape } from '../ref/vae/conv2d.js';
import { KERNEL_EXPORTS, type KernelExports } from './exports.js';
import { Scratch } from './scratch.js';
import { conv2d } from './ops/conv2d.js';
import { groupNorm } from './ops/groupnorm.js';
import { linear, linearBackward } from './ops/linear.js';
import { layerNorm, layerNormBackward } from './ops/layernorm.js';
import { modulate, modulateBackward, gatedResidual, gatedResidualBackward } from './ops/modulate.js';
import { attention, attentionBackward } from './ops/attention.js';
import { swiglu, swigluBackward, swigluExperts, swigluExpertsBackward } from './ops/swiglu.js';
import { gatherRows, scatterAddRows, scatterAddRowsBackward, moeExperts } from './ops/moe.js';
import { silu, siluBackward } from './ops/activations.js';

export type { KernelExports } from './exports.js';

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
  const missing = Object.keys(KERNEL_EXPORTS).filter((name) => typeof (exports as unknown as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) {
    throw new DitMoeError(`the kernels module lacks its exports (${missing.join(', ')}); rebuild it with \`npm run build:wasm\``, WHERE);
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

class WasmBackend implements WasmKernels {
  readonly name = 'wasm';
  /** Packed weights within their budget (wasm/weightCache.ts). */
  readonly weightCache: WeightCache;

  /** The 2×16 edge tile of each thread (index 0: the calling thread). */
  readonly tiles: number[];

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
  resident = (a: Float32Array): boolean => this.ownBuffers.has(a.buffer);

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
  parts(flops: number): number {
    return flops < this.minParallelFlops ? 1 : this.threads;
  }

  /**
   * Runs independent calls on all threads (each claims the next one); an argument -(s + 1)
   * stands for slot s of the executing thread's row of `scratch`.
   */
  runCalls(calls: Call[], scratch: number[][]): void {
    const e = this.exports as unknown as Record<string, (...args: number[]) => void>;
    const self = ([fn, args]: Call, t: number) => e[fn](...args.map((v) => (v < 0 ? scratch[t][-v - 1] : v)));
    if (!this.pool || scratch.length === 1) for (const call of calls) self(call, 0);
    else this.pool.run(calls, scratch, self);
  }

  weightsChanged(): void {
    this.weightCache.clear();
  }

  /** Packed panels of the weight w [N, K]: 'nk' for x·wᵀ, 'kn' for dout·w (held until the call ends). */
  packed(w: Float32Array, N: number, K: number, form: 'nk' | 'kn'): number {
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
  scratch<T>(body: (s: Scratch) => T): T {
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

  conv2d(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, shape: Conv2dShape): void {
    conv2d(this, out, x, w, b, shape);
  }

  groupNorm(out: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, N: number, C: number, S: number, G: number, eps: number, silu: boolean): void {
    groupNorm(this, out, x, w, b, N, C, S, G, eps, silu);
  }

  linear(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, M: number, K: number, N: number): void {
    linear(this, out, x, w, b, M, K, N);
  }

  linearBackward(dx: Float32Array | null, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number): void {
    linearBackward(this, dx, dw, db, dout, x, w, M, K, N);
  }

  layerNorm(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, M: number, D: number, eps: number): void {
    layerNorm(this, out, mean, rstd, x, w, b, M, D, eps);
  }

  layerNormBackward(dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, M: number, D: number): void {
    layerNormBackward(this, dx, dw, db, dout, x, w, mean, rstd, M, D);
  }

  modulate(out: Float32Array, x: Float32Array, shift: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
    modulate(this, out, x, shift, scale, B, T, D);
  }

  modulateBackward(dx: Float32Array, dshift: Float32Array, dscale: Float32Array, dout: Float32Array, x: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
    modulateBackward(this, dx, dshift, dscale, dout, x, scale, B, T, D);
  }

  gatedResidual(x: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
    gatedResidual(this, x, f, gate, B, T, D);
  }

  gatedResidualBackward(df: Float32Array, dgate: Float32Array, dout: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
    gatedResidualBackward(this, df, dgate, dout, f, gate, B, T, D);
  }

  attention(out: Float32Array, probs: Float32Array | null, qkv: Float32Array, B: number, T: number, H: number, Dh: number): void {
    attention(this, out, probs, qkv, B, T, H, Dh);
  }

  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, probs: Float32Array, B: number, T: number, H: number, Dh: number): void {
    attentionBackward(this, dqkv, dout, qkv, probs, B, T, H, Dh);
  }

  swiglu(out: Float32Array, gate: Float32Array | null, up: Float32Array | null, x: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
    swiglu(this, out, gate, up, x, wg, wu, wd, M, D, F);
  }

  swigluBackward(dx: Float32Array, dwg: Float32Array, dwu: Float32Array, dwd: Float32Array, dout: Float32Array, x: Float32Array, gate: Float32Array, up: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
    swigluBackward(this, dx, dwg, dwu, dwd, dout, x, gate, up, wg, wu, wd, M, D, F);
  }

  swigluExperts(calls: SwigluCall[], D: number): void {
    swigluExperts(this, calls, D);
  }

  swigluExpertsBackward(calls: SwigluBackwardCall[], D: number): void {
    swigluExpertsBackward(this, calls, D);
  }

  gatherRows(out: Float32Array, x: Float32Array, slots: Int32Array, k: number, D: number): void {
    gatherRows(this, out, x, slots, k, D);
  }

  scatterAddRows(out: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array | null, k: number, D: number): void {
    scatterAddRows(this, out, y, slots, weight, k, D);
  }

  scatterAddRowsBackward(dy: Float32Array, dweight: Float32Array, dout: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array, k: number, D: number): void {
    scatterAddRowsBackward(this, dy, dweight, dout, y, slots, weight, k, D);
  }

  moeExperts(out: Float32Array, x: Float32Array, topkIdx: Int32Array, topkWeight: Float32Array, experts: SwigluWeights[], M: number, D: number, F: number, k: number): void {
    moeExperts(this, out, x, topkIdx, topkWeight, experts, M, D, F, k);
  }

  silu(out: Float32Array, x: Float32Array, n: number): void {
    silu(this, out, x, n);
  }

  siluBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, n: number): void {
    siluBackward(this, dx, dout, x, n);
  }
}
