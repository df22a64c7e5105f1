/**
 * Counter-based random streams for training: every random draw of a run comes from a fresh
 * generator (ref/diffusion/rng.ts, xoshiro128**) seeded by a hash of (seed, purpose, index),
 * e.g. (seed, 'step', 41) for the noise, times and label dropout of step 41, or
 * (seed, 'epoch', 3) for the order of epoch 3. The RNG state of a run is therefore just its
 * seed and step: a resumed run draws exactly what an uninterrupted one would.
 */
import { makeRng, type Rng } from '../ref/diffusion/rng.js';

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64's finaliser (Steele, Lea & Flood 2014): a strong 64-bit mix. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function stringHash(s: string): bigint {
  let h = 0xcbf29ce484222325n; // FNV-1a 64
  for (let i = 0; i < s.length; i++) h = ((h ^ BigInt(s.charCodeAt(i))) * 0x100000001b3n) & MASK64;
  return h;
}

/** A 53-bit seed for the stream (seed, purpose, index). */
export function streamSeed(seed: number, purpose: string, index: number): number {
  let z = mix64((BigInt(seed) + 0x9e3779b97f4a7c15n) & MASK64);
  z = mix64(z ^ stringHash(purpose));
  z = mix64((z ^ BigInt(index)) & MASK64);
  return Number(z & ((1n << 53n) - 1n));
}

/** The generator of stream (seed, purpose, index). */
export function streamRng(seed: number, purpose: string, index: number): Rng {
  return makeRng(streamSeed(seed, purpose, index));
}
