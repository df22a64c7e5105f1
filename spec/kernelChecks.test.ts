/**
 * The operand checks are written once (ref/kernelChecks.ts) and applied to every backend: the
 * same bad call is rejected by each with a DitMoeError and the same message (only the backend's
 * name, which the message starts with, differs), before any arithmetic: ref on a short array
 * would otherwise compute NaN silently. Every kernel of the interface is given at least one bad
 * call; the backends are the operator suites' table (spec/backends.ts): ref, wasm, wasm on 2
 * threads, wasm on an unshared memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import { kernelChecks } from '../ref/kernelChecks.js';
import { linearForward } from '../ref/linear.js';
import { backendsWithThreads } from './backends.js';

const f = (n: number) => new Float32Array(n).fill(0.5);
const idx = (...v: number[]) => Int32Array.from(v);
const [D, F] = [4, 8];
const w = () => ({ gate: f(F * D), up: f(F * D), down: f(D * F) });
const call = (M: number) => ({ out: f(M * D), gate: null, up: null, x: f(M * D), w: w(), M, F });
const back = (M: number) => ({ dx: f(M * D), dw: w(), dout: f(M * D), x: f(M * D), gate: f(M * F), up: f(M * F), w: w(), M, F });

/** Bad calls, each with the message it must give after `<backend>.<kernel>: `. */
const BAD: [string, (k: Kernels) => void, RegExp][] = [
  ['linear', (k) => k.linear(f(6), f(6), f(5), null, 2, 3, 3), /^w has 5 elements, needs 9$/],
  ['linear', (k) => k.linear(f(6), f(6), f(9), f(2), 2, 3, 3), /^b has 2 elements, needs 3$/],
  ['linear', (k) => k.linear(f(6), f(6), f(9), null, 2, -3, 3), /^dimensions must be non-negative integers, got 2, -3, 3$/],
  ['linearBackward', (k) => k.linearBackward(f(6), null, null, f(5), f(6), f(9), 2, 3, 3), /^dout has 5 elements, needs 6$/],
  ['layerNorm', (k) => k.layerNorm(f(8), f(1), f(2), f(8), null, null, 2, 4, 1e-6), /^mean has 1 elements, needs 2$/],
  ['layerNormBackward', (k) => k.layerNormBackward(f(8), f(3), null, f(8), f(8), f(4), f(2), f(2), 2, 4), /^dw has 3 elements, needs 4$/],
  ['modulate', (k) => k.modulate(f(16), f(16), f(8), f(7), 2, 2, 4), /^scale has 7 elements, needs 8$/],
  ['modulateBackward', (k) => k.modulateBackward(f(16), f(8), f(8), f(16), f(15), f(8), 2, 2, 4), /^x has 15 elements, needs 16$/],
  ['gatedResidual', (k) => k.gatedResidual(f(16), f(16), f(8), 2, 2.5, 4), /^dimensions must be non-negative integers, got 2, 2.5, 4$/],
  ['gatedResidualBackward', (k) => k.gatedResidualBackward(f(16), f(8), f(16), f(12), f(8), 2, 2, 4), /^f has 12 elements, needs 16$/],
  ['attention', (k) => k.attention(f(8), null, f(23), 1, 2, 2, 2), /^qkv has 23 elements, needs 24$/],
  ['attention', (k) => k.attention(f(4), null, f(12), 1, 2, 1, 2.5), /^dimensions must be non-negative integers, got 1, 2, 1, 2.5$/],
  ['attentionBackward', (k) => k.attentionBackward(f(24), f(8), f(24), f(7), 1, 2, 2, 2), /^probs has 7 elements, needs 8$/],
  ['swiglu', (k) => k.swiglu(f(8), null, null, f(8), f(32), f(31), f(32), 2, D, F), /^wu has 31 elements, needs 32$/],
  ['swigluBackward', (k) => k.swigluBackward(f(8), f(32), f(32), f(32), f(8), f(8), f(16), f(15), f(32), f(32), f(32), 2, D, F), /^up has 15 elements, needs 16$/],
  ['swigluExperts', (k) => k.swigluExperts([call(6), { ...call(6), out: f(5) }], D), /^calls\[1\]\.out has 5 elements, needs 24$/],
  ['swigluExperts', (k) => k.swigluExperts([call(6), call(6), { ...call(6), M: -1 }], D), /^dimensions must be non-negative integers, got -1, 4, 8$/],
  ['swigluExpertsBackward', (k) => k.swigluExpertsBackward([back(6), { ...back(6), up: f(3) }], D), /^calls\[1\]\.up has 3 elements, needs 48$/],
  ['gatherRows', (k) => k.gatherRows(f(8), f(8), idx(0, 9), 2, 4), /^slots\[1\] = 9 is not a slot of the 2 tokens × 2$/],
  ['gatherRows', (k) => k.gatherRows(f(7), f(8), idx(0, 1), 2, 4), /^out has 7 elements, needs 8$/],
  ['scatterAddRows', (k) => k.scatterAddRows(f(8), f(8), idx(0, 3), f(3), 2, 4), /^slots\[1\] = 3 is not a slot of the 2 tokens × 2$/],
  ['scatterAddRows', (k) => k.scatterAddRows(f(8), f(8), idx(0, 1), null, 0, 4), /^k must be a positive integer, got 0$/],
  ['scatterAddRowsBackward', (k) => k.scatterAddRowsBackward(f(4), f(2), f(4), f(4), idx(3), f(4), 2, 4), /^slots\[0\] = 3 is not a slot of the 1 tokens × 2$/],
  ['moeExperts', (k) => k.moeExperts(f(8), f(8), idx(0, 1, 2), f(4), [w(), w()], 2, D, F, 2), /^topkIdx has 3 elements, needs 4$/],
  ['moeExperts', (k) => k.moeExperts(f(8), f(8), idx(0, 1, 2, 1), f(4), [w(), w()], 2, D, F, 2), /^topkIdx\[2\] = 2 is not one of the 2 experts$/],
  ['moeExperts', (k) => k.moeExperts(f(8), f(8), idx(0, 1, 1, 0), f(4), [w(), { ...w(), down: f(3) }], 2, D, F, 2), /^experts\[1\]\.down has 3 elements, needs 32$/],
  ['conv2d', (k) => k.conv2d(f(2 * 3 * 4 * 4), f(2 * 2 * 4 * 4), f(3 * 2 * 9 - 1), null, { N: 2, C: 2, H: 4, W: 4, O: 3, kh: 3, kw: 3, stride: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1 }), /^w has 53 elements, needs 54$/],
  ['conv2d', (k) => k.conv2d(f(4), f(4), f(9), null, { N: 1, C: 1, H: 2, W: 2, O: 1, kh: 3, kw: 3, stride: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0 }), /^a 3×3 kernel does not fit the padded 2×2 input$/],
  ['groupNorm', (k) => k.groupNorm(f(12), f(12), f(6), f(6), 1, 6, 2, 4, 1e-6, false), /^6 channels do not split into 4 groups$/],
  ['groupNorm', (k) => k.groupNorm(f(12), f(11), null, null, 1, 6, 2, 3, 1e-6, true), /^x has 11 elements, needs 12$/],
  ['tensor', (k) => k.tensor(-1), /^dimensions must be non-negative integers, got -1$/],
];

/** The error a call throws (or null). */
function thrown(fn: () => void): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}

let list: [string, Kernels][] = [];
let dispose = () => {};
beforeAll(async () => {
  const threads = await backendsWithThreads();
  list = threads.list;
  dispose = threads.dispose;
});
afterAll(() => dispose());

describe('operand checks, written once, on every backend', () => {
  it('every kernel of the interface has a check and a bad call here', () => {
    expect(new Set(BAD.map(([name]) => name))).toEqual(new Set(Object.keys(kernelChecks)));
  });

  it('without the checks, ref computes on a short array without a word (why they exist)', () => {
    const out = new Float32Array(6);
    expect(() => linearForward(out, f(6), f(5), null, 2, 3, 3)).not.toThrow();
    expect(out.some(Number.isNaN)).toBe(true);
  });

  it.each(BAD.map((b, i) => [`${b[0]} #${i}`, b] as const))('%s: every backend rejects it with the same message', (_, [kernel, bad, message]) => {
    const texts = list.map(([label, k]) => {
      const e = thrown(() => bad(k));
      expect(e, label).toBeInstanceOf(DitMoeError);
      const text = (e as Error).message;
      expect(text.startsWith(`${k.name}.${kernel}: `), `${label}: ${text}`).toBe(true);
      return text.slice(`${k.name}.${kernel}: `.length);
    });
    expect(texts[0]).toMatch(message);
    expect(new Set(texts).size, texts.join(' | ')).toBe(1);
  });
});
