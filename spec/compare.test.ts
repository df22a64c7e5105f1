/**
 * The oracle's judge (conform/compare.ts) cannot be fooled: properties over random tensors.
 * A result equal to the golden passes; one non-finite element where the golden is finite (or
 * the reverse), a perturbation beyond the tolerance, a missing or misshapen tensor fails, and
 * the failing line names the element.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { compareTensors, formatCompareLine } from '../conform/compare.js';
import { f32, f64, i64, type SafeTensors, type StTensor } from '../io/safetensors.js';

const file = (tensors: [string, StTensor][], kind = 'forward'): SafeTensors => ({ tensors: new Map(tensors), metadata: { kind } });

/** A shape of 1–3 dimensions of 1–5 each, and finite float32 values for it. */
const tensorArb = fc
  .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 })
  .chain((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return fc.tuple(fc.constant(shape), fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n }));
  });

/** The flat index → "[i, j, k]" as the judge should print it. */
function index(flat: number, shape: number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return `[${idx.join(', ')}]`;
}

const nonFinite = fc.constantFrom(NaN, Infinity, -Infinity);

describe('compare: the judge', () => {
  it('a result equal to the golden passes', () => {
    fc.assert(
      fc.property(tensorArb, ([shape, v]) => {
        const g = file([['out.eps', f32(shape, Float32Array.from(v))], ['in.x', f32(shape, Float32Array.from(v))]]);
        const lines = compareTensors(g, g);
        expect(lines.map((l) => l.status)).toEqual(['pass']); // in.* is input, not judged
      }),
    );
  });

  it('one non-finite element where the golden is finite fails and is named, whatever the tolerance and the other elements', () => {
    fc.assert(
      fc.property(tensorArb, fc.nat(), nonFinite, fc.constantFrom(undefined, 1e30), ([shape, v], pos, bad, rtol) => {
        const i = pos % v.length;
        const r = Float32Array.from(v);
        r[i] = bad;
        const lines = compareTensors(file([['out.eps', f32(shape, r)]]), file([['out.eps', f32(shape, Float32Array.from(v))]]), rtol);
        expect(lines[0].status).toBe('fail');
        expect(formatCompareLine(lines[0])).toContain(`element ${index(i, shape)} is ${bad}`);
      }),
    );
  });

  it('a non-finite golden element where the result is finite fails (the reverse)', () => {
    fc.assert(
      fc.property(tensorArb, fc.nat(), nonFinite, ([shape, v], pos, bad) => {
        const i = pos % v.length;
        const g = Float64Array.from(v);
        g[i] = bad;
        const lines = compareTensors(file([['out.v', f64(shape, Float64Array.from(v))]]), file([['out.v', f64(shape, g)]]));
        expect(lines[0].status).toBe('fail');
        expect(lines[0].detail).toContain(index(i, shape));
      }),
    );
  });

  it('the same non-finite value on both sides agrees; opposite infinities do not', () => {
    const g = file([['out.v', f64([3], Float64Array.of(1, NaN, Infinity))]]);
    expect(compareTensors(file([['out.v', f64([3], Float64Array.of(1, NaN, Infinity))]]), g)[0].status).toBe('pass');
    expect(compareTensors(file([['out.v', f64([3], Float64Array.of(1, NaN, -Infinity))]]), g)[0].status).toBe('fail');
  });

  it('a perturbation beyond rtol · max(1, max|golden|) fails naming the worst element; within it passes', () => {
    fc.assert(
      fc.property(tensorArb, fc.nat(), fc.double({ min: 1.5, max: 100, noNaN: true }), ([shape, v], pos, factor) => {
        const i = pos % v.length;
        const golden = Float64Array.from(v);
        const scale = Math.max(1, ...golden.map(Math.abs));
        const rtol = 1e-3;
        const far = Float64Array.from(v);
        far[i] += factor * rtol * scale;
        const line = compareTensors(file([['out.v', f64(shape, far)]]), file([['out.v', f64(shape, golden)]]), rtol)[0];
        expect(line.status).toBe('fail');
        expect(line.detail).toContain(`element ${index(i, shape)}`);
        const near = Float64Array.from(v);
        near[i] += (rtol * scale) / factor;
        expect(compareTensors(file([['out.v', f64(shape, near)]]), file([['out.v', f64(shape, golden)]]), rtol)[0].status).toBe('pass');
      }),
    );
  });

  it('integer tensors must be equal exactly', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 20 }), fc.nat(), (v, pos) => {
        const i = pos % v.length;
        const other = [...v];
        other[i] += 1;
        const g = file([['out.idx', i64([v.length], v)]]);
        expect(compareTensors(file([['out.idx', i64([v.length], v)]]), g, 1e30)[0].status).toBe('pass');
        expect(compareTensors(file([['out.idx', i64([v.length], other)]]), g, 1e30)[0].status).toBe('fail');
      }),
    );
  });

  it('a missing tensor or another shape (even with as many elements) fails', () => {
    fc.assert(
      fc.property(tensorArb, ([shape, v]) => {
        const g = file([['out.a', f32(shape, Float32Array.from(v))], ['out.b', f32(shape, Float32Array.from(v))]]);
        const missing = compareTensors(file([['out.a', f32(shape, Float32Array.from(v))]]), g);
        expect(missing.find((l) => l.name === 'out.b')!.status).toBe('missing');
        const flat = [v.length];
        const reshaped = compareTensors(file([['out.a', f32(shape.length === 1 ? [1, v.length] : flat, Float32Array.from(v))], ['out.b', f32(shape, Float32Array.from(v))]]), g);
        expect(reshaped.find((l) => l.name === 'out.a')!.status).toBe('shape');
      }),
    );
  });
});
