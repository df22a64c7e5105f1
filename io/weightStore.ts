/**
 * A model's weights from a file opened by offset (io/tensorFile.ts), kept in their stored dtype
 * and served to the model as float32 for the duration of a scope (ref/weights.ts).
 *
 * Resident: every tensor is read at open (float16/bfloat16 stay 16-bit: memory ≈ the file);
 * a 16-bit tensor is widened when a scope asks for it and dropped when the scope ends (the
 * embeddings' and the final layer's, small, are kept). Streamed: the embeddings and the final
 * layer are read at open; each block's tensors are read when the forward enters the block and
 * released when it leaves, and the next block (after the last, the first: the next forward's)
 * is read ahead while the current one computes, when the reader can (cli/readAhead.ts: on a
 * worker thread, which also checks the CRC-32s and widens the 16-bit tensors there).
 * Either way a tensor's values are the same: a streamed forward is bit-identical to a resident one.
 * Every array handed out carries a stable key (`tagWeight`), so the wasm backend finds the
 * weights it packed before even when the array is new.
 */
import { DitMoeError } from '../core/errors.js';
import type { DiTConfig } from '../ref/config.js';
import { ParamStore, paramSpecs } from '../ref/params.js';
import { checkWeightShapes, computedPosEmbed } from '../ref/model.js';
import { tagWeight, STEM, type Weights } from '../ref/weights.js';
import { checkTensorCrc, widen, type RawTensor, type TensorFile, type TensorRef } from './tensorFile.js';
import type { ByteSource } from './byteSource.js';

/**
 * Tensors of one scope to read: each range of the file copied to `at` in one buffer of `size`
 * bytes. A reader that can also widens the 16-bit tensors (`widen`: to byte `to` of a float32
 * buffer of `wideSize` bytes) and checks the CRC-32s (`checks`, emptied once they have passed).
 */
export interface ReadPlan {
  scope: number;
  size: number;
  /** Ranges sorted by file offset; adjacent ranges are merged into one read. */
  reads: { offset: number; bytes: number; at: number }[];
  tensors: { ref: TensorRef; at: number }[];
  widen: { name: string; at: number; n: number; dtype: 'F16' | 'BF16'; to: number }[];
  wideSize: number;
  checks: { at: number; bytes: number; crc: number }[];
}

/** A plan's bytes as read: the 16-bit tensors also widened, and the CRC-32s checked, when the reader did so. */
export interface BlockBytes {
  bytes: Uint8Array;
  wide: Float32Array | null;
  checked: boolean;
}

/** Executes read plans: synchronously, or ahead of time on another thread (cli/readAhead.ts). */
export interface RangeReader {
  /** The plan's bytes (waits for the read-ahead of this plan, if one was started). */
  read(plan: ReadPlan): BlockBytes;
  /** Starts reading a plan in the background; a later `read` of it returns its bytes. */
  readAhead?(plan: ReadPlan): void;
  /** The plan's bytes are no longer used (its buffer may be reused). */
  release?(plan: ReadPlan): void;
  /** Milliseconds `read` has spent waiting for the disk. */
  readonly waitMs: number;
  close?(): void;
}

/** Reads plans on the calling thread, one read call per merged range. */
export function syncReader(src: ByteSource): RangeReader {
  const r = {
    waitMs: 0,
    read(plan: ReadPlan): BlockBytes {
      const t0 = performance.now();
      const buf = new Uint8Array(plan.size);
      for (const x of plan.reads) src.read(x.offset, x.bytes, buf.subarray(x.at, x.at + x.bytes));
      r.waitMs += performance.now() - t0;
      return { bytes: buf, wide: null, checked: false };
    },
  };
  return r;
}

/** A plan reading `refs`: each tensor at an 8-byte-aligned place, adjacent ranges merged. */
export function readPlan(scope: number, refs: TensorRef[]): ReadPlan {
  const sorted = [...refs].sort((a, b) => a.offset - b.offset);
  const tensors: ReadPlan['tensors'] = [];
  const reads: ReadPlan['reads'] = [];
  const widen: ReadPlan['widen'] = [];
  const checks: ReadPlan['checks'] = [];
  let size = 0;
  let wideSize = 0;
  for (const ref of sorted) {
    const at = Math.ceil(size / 8) * 8;
    tensors.push({ ref, at });
    if (ref.crc32 !== undefined) checks.push({ at, bytes: ref.bytes, crc: ref.crc32 });
    if (ref.contiguous && (ref.dtype === 'F16' || ref.dtype === 'BF16')) {
      widen.push({ name: ref.name, at, n: ref.bytes / 2, dtype: ref.dtype, to: wideSize });
      wideSize += 2 * ref.bytes;
    }
    const last = reads[reads.length - 1];
    if (last && last.offset + last.bytes === ref.offset && last.at + last.bytes === at) last.bytes += ref.bytes;
    else reads.push({ offset: ref.offset, bytes: ref.bytes, at });
    size = at + ref.bytes;
  }
  return { scope, size, reads, tensors, widen, wideSize, checks };
}

export interface WeightStoreOptions {
  /** Read every tensor at open (default), or stream the blocks. */
  resident?: boolean;
  /** How blocks are read when streamed (default: synchronously from the file's source). */
  reader?: RangeReader;
  /** Called as the forward enters each scope (STEM = -1, blocks, depth = the final layer): progress. */
  onScope?: (scope: number, depth: number) => void;
  /** Called as the tensors read at open come in: bytes so far, bytes in all. */
  onRead?: (done: number, total: number) => void;
  /**
   * Called once per tensor with its values widened to float32: at open for every tensor of a
   * resident store, else when the forward first reaches the tensor's block (a streamed store
   * never holds them all). The CLI refuses non-finite weights with it.
   */
  check?: (name: string, data: Float32Array, shape: number[]) => void;
}

let stores = 0;

/** The scope a state_dict name belongs to: its block, the final layer, or the stem. */
export function scopeOf(name: string, depth: number): number {
  const m = /^blocks\.(\d+)\./.exec(name);
  if (m) return Number(m[1]);
  return name.startsWith('final_layer.') ? depth : STEM;
}

/** Bytes of the file's tensors the configuration uses, in all and per scope (the largest block among them). */
export function storedBytes(file: TensorFile, config: DiTConfig): { total: number; largestBlock: number; blocks: number[] } {
  const blocks = new Array<number>(config.depth).fill(0);
  let total = 0;
  for (const s of paramSpecs(config)) {
    const t = file.tensors.get(s.name);
    if (!t) continue;
    total += t.bytes;
    const scope = scopeOf(s.name, config.depth);
    if (scope >= 0 && scope < config.depth) blocks[scope] += t.bytes;
  }
  return { total, largestBlock: Math.max(0, ...blocks), blocks };
}

export class FileWeights implements Weights {
  readonly resident: boolean;
  private readonly id = `w${++stores}`;
  private readonly depth: number;
  private readonly names = new Set<string>();
  /** Tensors in their stored dtype, by name: resident ones and the current block's. */
  private readonly raw = new Map<string, RawTensor>();
  /** Widened (or tagged float32) arrays handed out, by name, until their scope ends. */
  private readonly wide = new Map<string, Float32Array>();
  private readonly plans: ReadPlan[] = [];
  private readonly reader: RangeReader;
  private readonly checked = new Set<string>();
  /** Tensors already given to opts.check. */
  private readonly valuesChecked = new Set<string>();
  private loaded = -2;

  constructor(
    readonly file: TensorFile,
    readonly config: DiTConfig,
    private readonly opts: WeightStoreOptions = {},
  ) {
    checkWeightShapes(config, file.tensors, file.where);
    this.resident = opts.resident !== false;
    this.depth = config.depth;
    this.reader = opts.reader ?? syncReader(file.source);
    const byScope: TensorRef[][] = Array.from({ length: this.depth }, () => []);
    const now: TensorRef[] = [];
    for (const s of paramSpecs(config)) {
      this.names.add(s.name);
      const t = file.tensors.get(s.name);
      if (!t) continue; // pos_embed, computed
      const scope = scopeOf(s.name, this.depth);
      if (this.resident || scope === STEM || scope === this.depth) now.push(t);
      else byScope[scope].push(t);
    }
    this.plans = byScope.map((refs, i) => readPlan(i, refs));
    this.readNow(now);
    if (opts.check && this.resident) for (const [name, r] of this.raw) this.checkValues(name, widen(r), r.shape);
    if (!file.tensors.has('pos_embed')) this.wide.set('pos_embed', tagWeight(computedPosEmbed(config), `${this.id}:pos_embed`));
    if (!this.resident && this.depth > 0) this.reader.readAhead?.(this.plans[0]);
  }

  /** Reads the tensors kept for the store's life, tensor by tensor (progress between them). */
  private readNow(refs: TensorRef[]): void {
    const total = refs.reduce((s, t) => s + t.bytes, 0);
    let done = 0;
    for (const t of refs) {
      const range = this.file.source.read(t.offset, t.bytes);
      this.keep(t, range);
      done += t.bytes;
      this.opts.onRead?.(done, total);
    }
  }

  private keep(t: TensorRef, range: Uint8Array): void {
    if (!this.checked.has(t.name)) {
      checkTensorCrc(this.file, t, range);
      this.checked.add(t.name);
    }
    this.raw.set(t.name, t.decode(range));
  }

  /** Bytes of tensors held in their stored dtype (resident ones and the current block's). */
  get heldBytes(): number {
    let n = 0;
    for (const r of this.raw.values()) n += r.data.byteLength;
    return n;
  }

  /** Milliseconds the forward has waited for the disk (streamed blocks). */
  get waitMs(): number {
    return this.reader.waitMs;
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  get(name: string): Float32Array {
    const w = this.wide.get(name);
    if (w) return w;
    const r = this.raw.get(name);
    if (!r) {
      if (!this.names.has(name)) throw new DitMoeError(`no parameter named ${name}`, this.file.where);
      throw new DitMoeError(`tensor '${name}' asked for outside its block (the store holds ${this.loaded >= 0 ? `block ${this.loaded}` : 'no block'})`, this.file.where);
    }
    const a = tagWeight(widen(r), `${this.id}:${name}`);
    this.checkValues(name, a, r.shape);
    this.wide.set(name, a);
    return a;
  }

  private checkValues(name: string, data: Float32Array, shape: number[]): void {
    if (!this.opts.check || this.valuesChecked.has(name)) return;
    this.opts.check(name, data, shape);
    this.valuesChecked.add(name);
  }

  enter(scope: number): void {
    this.opts.onScope?.(scope, this.depth);
    if (this.resident || scope < 0 || scope >= this.depth || this.loaded === scope) return;
    const plan = this.plans[scope];
    const { bytes, wide, checked } = this.reader.read(plan);
    if (checked) {
      for (const { ref } of plan.tensors) this.checked.add(ref.name);
      plan.checks = []; // passed: not checked again
    }
    const widened = new Map(wide ? plan.widen.map((w) => [w.name, w]) : []);
    for (const { ref, at } of plan.tensors) {
      const w = widened.get(ref.name);
      if (w) this.wide.set(ref.name, tagWeight(new Float32Array(wide!.buffer, wide!.byteOffset + w.to, w.n), `${this.id}:${ref.name}`));
      else this.keep(ref, bytes.subarray(at, at + ref.bytes));
    }
    this.loaded = scope;
    this.reader.readAhead?.(this.plans[(scope + 1) % this.depth]);
  }

  leave(scope: number): void {
    if (scope < 0 || scope >= this.depth) return; // the stem's and final layer's stay
    const prefix = `blocks.${scope}.`;
    for (const name of [...this.wide.keys()]) if (name.startsWith(prefix)) this.wide.delete(name);
    if (this.resident) return;
    for (const { ref } of this.plans[scope].tensors) this.raw.delete(ref.name);
    this.reader.release?.(this.plans[scope]);
    this.loaded = -2;
  }

  /** Every weight widened into one float32 buffer (training, backward): resident stores only. */
  materialize(): ParamStore {
    if (!this.resident) throw new DitMoeError('its weights are streamed block by block (the memory budget is below the model); training and backward need them resident: raise --memory-budget', this.file.where);
    const params = new ParamStore(paramSpecs(this.config));
    for (const s of params.specs) {
      const r = this.raw.get(s.name);
      if (r) widen(r, params.get(s.name));
      else params.get(s.name).set(this.get(s.name));
    }
    return params;
  }

  close(): void {
    this.reader.close?.();
  }
}
