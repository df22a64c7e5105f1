/**
 * Helpers for golden-value tests: load a golden case file and compare a tensor with the
 * llm.c-style report (worst element, first few (expected, got) pairs, max difference).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { parseSafetensors, asFloat32, type SafeTensors, type StTensor } from '../io/safetensors.js';

export const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'golden');

const cache = new Map<string, SafeTensors>();
export function golden(name: string): SafeTensors {
  let g = cache.get(name);
  if (!g) {
    const file = path.join(GOLDEN_DIR, name);
    g = parseSafetensors(new Uint8Array(fs.readFileSync(file)), file);
    cache.set(name, g);
  }
  return g;
}

export function gt(g: SafeTensors, name: string): StTensor {
  const t = g.tensors.get(name);
  if (!t) throw new Error(`golden tensor ${name} missing`);
  return t;
}

export interface Diff {
  maxAbs: number;
  rel: number; // max |got - expected| / max(1, max|expected|)
  worst: number;
}

export function diff(got: ArrayLike<number>, expected: ArrayLike<number>): Diff {
  let maxAbs = 0;
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(Number(expected[i])));
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(Number(got[i]) - Number(expected[i]));
    if (!(d <= maxAbs)) {
      maxAbs = d;
      worst = i;
    }
  }
  return { maxAbs, rel: maxAbs / scale, worst };
}

/**
 * Asserts |got - expected| ≤ rtol · max(1, max|expected|) elementwise, and equal lengths.
 * On failure the message names the tensor, the worst element and the first few pairs.
 */
export function expectClose(name: string, got: ArrayLike<number>, expected: StTensor | ArrayLike<number>, rtol: number): Diff {
  const exp = 'dtype' in expected ? asFloat32(expected) : expected;
  expect(got.length, `${name}: length`).toBe(exp.length);
  const d = diff(got, exp);
  if (!(d.rel <= rtol)) {
    const pairs = Array.from({ length: Math.min(5, exp.length) }, (_, i) => `(${Number(exp[i]).toPrecision(7)}, ${Number(got[i]).toPrecision(7)})`).join(' ');
    throw new Error(`${name}: max error ${d.maxAbs.toExponential(3)} (relative ${d.rel.toExponential(3)} > ${rtol}) at element ${d.worst}: expected ${exp[d.worst]}, got ${got[d.worst]}; first (expected, got): ${pairs}`);
  }
  return d;
}
