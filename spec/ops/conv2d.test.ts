/**
 * conv2d (ref/vae/conv2d.ts, wasm/ops/conv2d.ts): against a direct float64 loop over the formula
 * (independent of the image-to-columns form), for random geometries: 1×1 and 3×3 kernels, stride
 * 1 and 2, uneven padding (diffusers' downsampler pads right and bottom only), widths that cross
 * the GEMM's 16-column panels, its 256-deep K blocks and the kernel's blocks of positions (16–256 rows, fewer the deeper K). Then every
 * backend against ref, within 1e-5 relative to max(1, max|ref|) (the kernel suites' tolerance: both
 * sum the same products in float32, in different orders). Tolerance against float64: 1e-5 too —
 * sums of ≤ 600 products of values in [−1, 1] lose far less in float32.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backendsWithThreads } from '../backends.js';
import { rng } from '../random.js';
import { diff } from '../golden.js';
import { conv2dForward, convOut, type Conv2dShape } from '../../ref/vae/conv2d.js';
import { DitMoeError } from '../../core/errors.js';

const { list: BACKENDS, dispose } = await backendsWithThreads();
afterAll(dispose);
const TOL = 1e-5;

function values(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

/** out[n,o,y,x] = b[o] + Σ w[o,c,i,j]·x[n,c,y·s+i−pT,x·s+j−pL], in float64. */
function conv64(x: Float32Array, w: Float32Array, b: Float32Array | null, s: Conv2dShape): Float64Array {
  const [Ho, Wo] = convOut(s);
  const out = new Float64Array(s.N * s.O * Ho * Wo);
  for (let n = 0; n < s.N; n++)
    for (let o = 0; o < s.O; o++)
      for (let y = 0; y < Ho; y++)
        for (let xx = 0; xx < Wo; xx++) {
          let acc = b ? b[o] : 0;
          for (let c = 0; c < s.C; c++)
            for (let i = 0; i < s.kh; i++)
              for (let j = 0; j < s.kw; j++) {
                const iy = y * s.stride + i - s.padTop;
                const ix = xx * s.stride + j - s.padLeft;
                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                acc += w[((o * s.C + c) * s.kh + i) * s.kw + j] * x[((n * s.C + c) * s.H + iy) * s.W + ix];
              }
          out[((n * s.O + o) * Ho + y) * Wo + xx] = acc;
        }
  return out;
}

/** max |got − want| relative to max(1, max|want|) (spec/golden.ts). */
const maxRel = (got: ArrayLike<number>, want: ArrayLike<number>) => diff(got, want).rel;

const geometry = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    C: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constantFrom(29, 40)),
    H: fc.integer({ min: 1, max: 11 }),
    W: fc.integer({ min: 1, max: 13 }),
    O: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constantFrom(16, 17, 33)),
    k: fc.constantFrom(1, 3),
    stride: fc.constantFrom(1, 2),
    pads: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .map((r) => ({ ...r, s: { N: r.N, C: r.C, H: r.H, W: r.W, O: r.O, kh: r.k, kw: r.k, stride: r.stride, padTop: r.pads[0], padLeft: r.pads[1], padBottom: r.pads[2], padRight: r.pads[3] } as Conv2dShape }))
  .filter((r) => convOut(r.s).every((d) => d >= 1));

function operands(s: Conv2dShape, seed: number, bias: boolean) {
  return { x: values(seed, s.N * s.C * s.H * s.W), w: values(seed + 1, s.O * s.C * s.kh * s.kw), b: bias ? values(seed + 2, s.O) : null };
}

describe('conv2d: ref against the formula', () => {
  it('random geometries (1×1, 3×3, stride 2, uneven padding)', () => {
    fc.assert(
      fc.property(geometry, ({ s, seed, bias }) => {
        const { x, w, b } = operands(s, seed, bias);
        const [Ho, Wo] = convOut(s);
        const out = new Float32Array(s.N * s.O * Ho * Wo);
        conv2dForward(out, x, w, b, s);
        expect(maxRel(out, conv64(x, w, b, s))).toBeLessThanOrEqual(TOL);
      }),
      { numRuns: 60, seed: 2026 },
    );
  });

  it("diffusers' downsampler: pad right and bottom by one, stride 2 halves an even size", () => {
    const s: Conv2dShape = { N: 1, C: 2, H: 8, W: 6, O: 3, kh: 3, kw: 3, stride: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1 };
    expect(convOut(s)).toEqual([4, 3]);
    const { x, w, b } = operands(s, 7, true);
    const out = new Float32Array(3 * 12);
    conv2dForward(out, x, w, b, s);
    expect(maxRel(out, conv64(x, w, b, s))).toBeLessThanOrEqual(TOL);
  });

  it('a geometry with no output is an error', () => {
    const s: Conv2dShape = { N: 1, C: 1, H: 1, W: 1, O: 1, kh: 3, kw: 3, stride: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0 };
    expect(() => conv2dForward(new Float32Array(1), new Float32Array(1), new Float32Array(9), null, s)).toThrow(DitMoeError);
  });
});

describe.each(BACKENDS)('conv2d [%s] against ref', (_name, kern) => {
  it('random geometries, plain arrays', () => {
    fc.assert(
      fc.property(geometry, ({ s, seed, bias }) => {
        const { x, w, b } = operands(s, seed, bias);
        const [Ho, Wo] = convOut(s);
        const want = new Float32Array(s.N * s.O * Ho * Wo);
        conv2dForward(want, x, w, b, s);
        const got = new Float32Array(want.length).fill(NaN); // every element must be written
        kern.conv2d(got, x, w, b, s);
        expect(maxRel(got, want)).toBeLessThanOrEqual(TOL);
      }),
      { numRuns: 40, seed: 2026 },
    );
  });

  it("the VAE's shapes on the backend's own tensors (several position blocks, K over 256)", () => {
    for (const s of [
      { N: 2, C: 48, H: 12, W: 13, O: 40, kh: 3, kw: 3, stride: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1 },
      { N: 1, C: 32, H: 16, W: 16, O: 32, kh: 3, kw: 3, stride: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1 },
      { N: 2, C: 20, H: 9, W: 15, O: 24, kh: 1, kw: 1, stride: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0 },
      // K = 2700: blocks of 48 positions, 143 positions = 2 whole blocks and a part, odd rows
      { N: 1, C: 300, H: 11, W: 13, O: 20, kh: 3, kw: 3, stride: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1 },
    ] as Conv2dShape[]) {
      const { x, w, b } = operands(s, 11, true);
      const [Ho, Wo] = convOut(s);
      const want = new Float32Array(s.N * s.O * Ho * Wo);
      conv2dForward(want, x, w, b, s);
      const m = kern.mark();
      const xt = kern.tensor(x.length);
      xt.set(x);
      const got = kern.tensor(want.length);
      kern.conv2d(got, xt, w, b, s);
      expect(maxRel(got, want)).toBeLessThanOrEqual(TOL);
      kern.release(m);
    }
  });
});
