/**
 * A small seeded random number generator, so that every sampling and training run is
 * reproducible from `--seed` (it does not reproduce PyTorch's stream; golden cases pass their
 * noise explicitly).
 *
 * Generator: xoshiro128** 1.1 (Blackman & Vigna 2018; 128-bit state, 32-bit outputs, period
 * 2^128 − 1), its state filled from the seed by SplitMix64 (so seeds 0, 1, 2, ... give
 * unrelated streams and the state is never all zero).
 * uniform(): a double in [0, 1) with 53 random bits (two outputs: 27 + 26 bits).
 * normal(): Box–Muller, both values of each pair used (z0 = r cos θ first, then z1 = r sin θ),
 *   r = √(−2 ln u1), θ = 2π u2, with u1 = 1 − uniform() ∈ (0, 1] so the log is finite.
 */
import { DitMoeError } from '../../core/errors.js';

export interface Rng {
  /** A double uniform in [0, 1). */
  uniform(): number;
  /** A standard normal N(0, 1) double. */
  normal(): number;
  /** Fills `out` with standard normals (rounded to float32) and returns it. */
  fillNormal(out: Float32Array): Float32Array;
  /** A 32-bit unsigned integer. */
  nextUint32(): number;
}

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 (Steele, Lea & Flood 2014): the standard seeder for the xoshiro family. */
function splitmix64(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [s, z ^ (z >> 31n)];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Xoshiro128ss implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  /** `seed`: a non-negative safe integer (e.g. from `--seed`). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new DitMoeError(`seed must be a non-negative integer, got ${seed}`, '--seed');
    let st = BigInt(seed);
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      const [next, z] = splitmix64(st);
      st = next;
      words.push(Number(z & 0xffffffffn), Number(z >> 32n));
    }
    [this.s0, this.s1, this.s2, this.s3] = words;
  }

  /** A generator with the given 128-bit state (four 32-bit words, not all zero): for reference vectors. */
  static fromState(s0: number, s1: number, s2: number, s3: number): Xoshiro128ss {
    if ((s0 | s1 | s2 | s3) === 0) throw new DitMoeError('xoshiro128** state must not be all zero', 'rng');
    const g = new Xoshiro128ss(0);
    [g.s0, g.s1, g.s2, g.s3] = [s0 >>> 0, s1 >>> 0, s2 >>> 0, s3 >>> 0];
    return g;
  }

  /** xoshiro128**: result = rotl(s1 · 5, 7) · 9, then the xorshift state update. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** (a >> 5) · 2^26 + (b >> 6), divided by 2^53: uniform on the 2^53 grid of [0, 1). */
  uniform(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Box–Muller; the second value of each pair is kept for the next call. */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  fillNormal(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }
}

/** A seeded generator (xoshiro128**, SplitMix64 seeding, Box–Muller normals). */
export function makeRng(seed: number): Rng {
  return new Xoshiro128ss(seed);
}
