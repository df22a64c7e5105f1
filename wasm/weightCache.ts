/**
 * Packed weights in the module's memory, within a budget: a least-recently-used cache of the
 * GEMM panels of each weight [N, K] ('nk' for x·wᵀ, 'kn' for dout·w). A weight is found by
 * its stable key when its store gave one (`tagWeight`: a store that hands out a new array for
 * the same weight every block or forward), else by its ArrayBuffer and byte range (subarray
 * views of one buffer hit too; the entries go when the buffer is collected). A fingerprint of
 * 8 sampled elements is checked on every use, so a weight changed in place is repacked.
 *
 * When a new panel would pass the budget, the least recently used panels not needed by the
 * current kernel call are released first; the panels one call needs at once (an MoE layer's
 * experts) are pinned until `unpin()` at the end of the call. If they alone pass the budget,
 * the call fails with one line naming what did not fit and the budget. The rest of the
 * module's 4 GiB is the activations' and scratch's share.
 */
import { DitMoeError } from '../core/errors.js';
import { weightTag } from '../ref/weights.js';
import type { Arena } from './arena.js';

type Form = 'nk' | 'kn';

interface Packed {
  N: number;
  K: number;
  nk: number;
  kn: number;
  bytes: number;
  fingerprint: Float32Array;
  forget: () => void;
}

const FP = 8;

function fingerprint(w: Float32Array, n: number, into: Float32Array): Float32Array {
  for (let i = 0; i < FP; i++) into[i] = w[Math.floor((i * (n - 1)) / (FP - 1))];
  return into;
}

function sameFingerprint(w: Float32Array, n: number, fp: Float32Array): boolean {
  for (let i = 0; i < FP; i++) if (!Object.is(w[Math.floor((i * (n - 1)) / (FP - 1))], fp[i])) return false;
  return true;
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** The default budget: 3 GiB of the 4 GiB a wasm32 memory addresses, the rest for activations and scratch. */
export const DEFAULT_WEIGHT_BUDGET = 3 * 2 ** 30;

export class WeightCache {
  private byBuffer = new WeakMap<ArrayBufferLike, Map<string, Packed>>();
  private byTag = new Map<string, Packed>();
  /** Entries, least recently used first. */
  private lru = new Set<Packed>();
  private pinned = new Set<Packed>();
  private registry = new FinalizationRegistry<Map<string, Packed>>((entries) => {
    for (const p of entries.values()) this.drop(p);
  });
  /** Bytes of packed panels held. */
  bytes = 0;
  /** Panels packed and panels evicted so far (tests, bench). */
  packs = 0;
  evictions = 0;

  constructor(
    private readonly arena: Arena,
    /** Bytes the packed panels may take. */
    public budget: number,
    /** Packs w [N, K] in `form` at a fresh block of the arena; returns its address. */
    private readonly pack: (w: Float32Array, N: number, K: number, form: Form) => number,
    /** Bytes of the packed panels of an [N, K] weight in `form`. */
    private readonly packedBytes: (N: number, K: number, form: Form) => number,
  ) {}

  /** The panels of w [N, K] in `form`, packed if they are not held; pinned until `unpin`. */
  get(w: Float32Array, N: number, K: number, form: Form): number {
    const n = N * K;
    const p = this.entry(w, N, K, n);
    this.lru.delete(p);
    this.lru.add(p);
    this.pinned.add(p);
    if (!p[form]) {
      const bytes = this.packedBytes(N, K, form);
      this.makeRoom(bytes, `the ${N}×${K} weight`);
      let ptr: number;
      try {
        ptr = this.pack(w, N, K, form);
      } catch (e) {
        // the memory's 4 GiB end before the budget: give back what is not pinned and try once more
        if (!(e instanceof DitMoeError) || !this.evictUnpinned()) throw e;
        ptr = this.pack(w, N, K, form);
      }
      p[form] = ptr;
      p.bytes += bytes;
      this.bytes += bytes;
      this.packs++;
    }
    return p[form];
  }

  private entry(w: Float32Array, N: number, K: number, n: number): Packed {
    const tag = weightTag(w);
    let owner: Map<string, Packed>;
    let key: string;
    if (tag !== undefined) {
      owner = this.byTag;
      key = tag;
    } else {
      let entries = this.byBuffer.get(w.buffer);
      if (!entries) {
        entries = new Map();
        this.byBuffer.set(w.buffer, entries);
        this.registry.register(w.buffer, entries);
      }
      owner = entries;
      key = `${w.byteOffset}:${n}`;
    }
    let p = owner.get(key);
    if (p && (p.N !== N || p.K !== K || !sameFingerprint(w, n, p.fingerprint))) {
      this.drop(p);
      p = undefined;
    }
    if (!p) {
      const created: Packed = { N, K, nk: 0, kn: 0, bytes: 0, fingerprint: fingerprint(w, n, new Float32Array(FP)), forget: () => owner.delete(key) };
      owner.set(key, created);
      this.lru.add(created);
      p = created;
    }
    return p;
  }

  /** Evicts least recently used, unpinned panels until `bytes` more fit the budget. */
  private makeRoom(bytes: number, what: string): void {
    for (const p of this.lru) {
      if (this.bytes + bytes <= this.budget) return;
      if (!this.pinned.has(p)) {
        this.drop(p);
        this.evictions++;
      }
    }
    if (this.bytes + bytes > this.budget) {
      let need = bytes;
      for (const p of this.pinned) need += p.bytes;
      throw new DitMoeError(`a layer's packed weights need ${MiB(need)} at once (${what} was the one that did not fit), more than the weight cache's budget of ${MiB(this.budget)}`, 'wasm memory');
    }
  }

  private evictUnpinned(): boolean {
    let any = false;
    for (const p of [...this.lru]) {
      if (this.pinned.has(p) || !p.bytes) continue;
      this.drop(p);
      this.evictions++;
      any = true;
    }
    return any;
  }

  /** The end of a kernel call: its panels may be evicted again. */
  unpin(): void {
    this.pinned.clear();
  }

  /** Drops every packed weight (the optimiser changed them in place). */
  clear(): void {
    for (const p of [...this.lru]) this.drop(p);
    this.byBuffer = new WeakMap();
  }

  private drop(p: Packed): void {
    if (!this.lru.delete(p)) return;
    p.forget();
    this.pinned.delete(p);
    if (p.nk) this.arena.release(p.nk);
    if (p.kn) this.arena.release(p.kn);
    this.bytes -= p.bytes;
    p.nk = p.kn = p.bytes = 0;
  }
}
