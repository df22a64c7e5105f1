/**
 * Noise schedules and timestep respacing against golden/tiny.schedule.safetensors (float64
 * arrays from the official numpy code). Tolerance 1e-12 relative per element: both sides
 * evaluate the same float64 formulas in the same order, so only libm differences (≤ 1 ulp
 * in log/cos, amplified by the 1 − ᾱ ratio near t = 0 of the cosine schedule) remain.
 * Property tests: ᾱ strictly decreasing in (0, 1); respacing gives exactly the requested count,
 * sorted, in range, containing 0; bad strings are DitMoeErrors.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { golden, gt } from './golden.js';
import { asNumbers } from '../io/safetensors.js';
import { DitMoeError } from '../core/errors.js';
import { makeSchedule, linearBetas, cosineBetas, namedBetas } from '../ref/diffusion/schedule.js';
import { spaceTimesteps, respaceBetas, roundHalfEven, createDiffusion } from '../ref/diffusion/respace.js';

const g = golden('tiny.schedule.safetensors');

/** max_i |got_i − exp_i| / |exp_i| (|exp_i| floored at 1e-300), and exact length. */
function expectRel(name: string, got: ArrayLike<number>, expected: ArrayLike<number>, rtol: number): number {
  expect(got.length, `${name}: length`).toBe(expected.length);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Number(expected[i]);
    const r = Math.abs(Number(got[i]) - e) / Math.max(Math.abs(e), 1e-300);
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  if (!(worst <= rtol)) throw new Error(`${name}: relative error ${worst.toExponential(3)} > ${rtol} at ${at}: expected ${expected[at]}, got ${got[at]}`);
  return worst;
}

describe('schedule golden (float64, 1e-12 relative)', () => {
  // The official create_diffusion always builds a SpacedDiffusion: even unrespaced, its betas are
  // recomputed as 1 − ᾱ_i/ᾱ_{i−1} (≈ 4e-13 relative from the raw linspace), and the golden arrays are
  // those. createDiffusion does the same; the raw base schedule is checked against them too.
  const lin = createDiffusion({ respacing: '', noiseSchedule: 'linear', diffusionSteps: 1000 });
  const arrays: [string, Float64Array][] = [
    ['betas', lin.betas],
    ['alphas_cumprod', lin.alphasCumprod],
    ['alphas_cumprod_prev', lin.alphasCumprodPrev],
    ['posterior_variance', lin.posteriorVariance],
    ['posterior_log_variance_clipped', lin.posteriorLogVarianceClipped],
    ['posterior_mean_coef1', lin.posteriorMeanCoef1],
    ['posterior_mean_coef2', lin.posteriorMeanCoef2],
  ];
  it.each(arrays)('linear1000.%s', (name, got) => {
    const exp = gt(g, `linear1000.${name}`);
    expect(exp.dtype).toBe('F64');
    expectRel(`linear1000.${name}`, got, asNumbers(exp), 1e-12);
  });

  it('the raw linear base schedule (np.linspace) agrees with them', () => {
    expectRel('linspace betas', linearBetas(1000), asNumbers(gt(g, 'linear1000.betas')), 1e-12);
    expectRel('base alphas_cumprod', makeSchedule(linearBetas(1000)).alphasCumprod, asNumbers(gt(g, 'linear1000.alphas_cumprod')), 1e-12);
  });

  it('cosine1000.betas (squaredcos_cap_v2)', () => {
    // the golden cosine betas are the raw get_named_beta_schedule output; V8's Math.cos differs from
    // glibc's cos by 1 ulp at 37 of the 1001 points, which the ratio 1 − ᾱ(t2)/ᾱ(t1) turns into ≤ 4e-13
    expectRel('cosine1000.betas', cosineBetas(1000), asNumbers(gt(g, 'cosine1000.betas')), 1e-12);
    expectRel('cosine alias', namedBetas('cosine', 1000), asNumbers(gt(g, 'cosine1000.betas')), 1e-12);
  });

  it.each(['250', 'ddim50', 'ddim25', '10', '10,15,20', '100'])('respace %s: timestep_map and betas', (spec) => {
    const key = `respace.${spec.replace(/,/g, '_')}`;
    const d = createDiffusion({ respacing: spec, noiseSchedule: 'linear', diffusionSteps: 1000 });
    expect(Array.from(d.timestepMap)).toEqual(Array.from(asNumbers(gt(g, `${key}.timestep_map`))));
    expectRel(`${key}.betas`, d.betas, asNumbers(gt(g, `${key}.betas`)), 1e-12);
    expect(d.originalNumSteps).toBe(1000);
  });
});

describe('schedule properties', () => {
  // linear needs T > 20: its last beta is 0.02·1000/T, which reaches 1 at T = 20 (the official assert rejects β > 1)
  it('alphas_cumprod is strictly decreasing and inside (0, 1), for linear and cosine, any T > 20', () => {
    fc.assert(
      fc.property(fc.integer({ min: 21, max: 4000 }), fc.constantFrom('linear', 'squaredcos_cap_v2'), (T, name) => {
        const s = makeSchedule(namedBetas(name, T));
        for (let i = 0; i < T; i++) {
          if (!(s.alphasCumprod[i] > 0 && s.alphasCumprod[i] < 1)) return false;
          if (i > 0 && !(s.alphasCumprod[i] < s.alphasCumprod[i - 1])) return false;
        }
        return true;
      }),
      { numRuns: 60, seed: 20261127 },
    );
  });

  it('respaced schedule keeps ᾱ at the kept steps (the definition of the respaced betas)', () => {
    const base = makeSchedule(linearBetas(1000));
    const kept = spaceTimesteps(1000, '37');
    const sp = makeSchedule(respaceBetas(base.alphasCumprod, kept).betas);
    kept.forEach((k, i) => expect(Math.abs(sp.alphasCumprod[i] - base.alphasCumprod[k]) / base.alphasCumprod[k]).toBeLessThan(1e-12));
  });

  it('Python round: half to even', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4999999, 2.5000001, 7].map(roundHalfEven)).toEqual([0, 2, 2, 4, 0, -2, 2, 3, 7]);
  });

  it('a section stride that lands on x.5 rounds to even like Python ("4" of 8 steps: stride 7/3; "3" of 7: 0, 3, 6)', () => {
    // 5 steps into a section of 11: stride 2.5 → round(2.5) = 2, round(7.5) = 8 (Python), not 3 and 8
    expect(spaceTimesteps(11, '5')).toEqual([0, 2, 5, 8, 10]);
    expect(spaceTimesteps(7, '3')).toEqual([0, 3, 6]);
  });

  it('respacing returns exactly the requested count, sorted, in range, containing 0', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }).chain((T) => fc.tuple(fc.constant(T), fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 4 }))),
        ([T, counts]) => {
          // sections of floor(T / n) steps, the first T mod n of them one longer (official space_timesteps)
          const size = (i: number) => Math.floor(T / counts.length) + (i < T % counts.length ? 1 : 0);
          const fits = counts.every((c, i) => c <= size(i));
          const spec = counts.join(',');
          if (!fits) {
            expect(() => spaceTimesteps(T, spec)).toThrow(DitMoeError);
            return;
          }
          const s = spaceTimesteps(T, spec);
          expect(s.length).toBe(counts.reduce((a, b) => a + b, 0));
          expect(s[0]).toBe(0);
          for (let i = 1; i < s.length; i++) expect(s[i]).toBeGreaterThan(s[i - 1]);
          expect(s[s.length - 1]).toBeLessThan(T);
        },
      ),
      { numRuns: 300, seed: 20261127 },
    );
  });

  it('ddimN: exactly N steps with one integer stride, or a DitMoeError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 1500 }), fc.integer({ min: 1, max: 300 }), (T, n) => {
        let s: number[];
        try {
          s = spaceTimesteps(T, `ddim${n}`);
        } catch (e) {
          expect(e).toBeInstanceOf(DitMoeError);
          // no stride works: no s in [1, T) has ceil(T/s) = n
          for (let st = 1; st < T; st++) expect(Math.ceil(T / st)).not.toBe(n);
          return;
        }
        expect(s.length).toBe(n);
        expect(s[0]).toBe(0);
        const stride = n > 1 ? s[1] - s[0] : 1;
        s.forEach((v, i) => expect(v).toBe(i * stride));
        expect(s[n - 1]).toBeLessThan(T);
      }),
      { numRuns: 300, seed: 20261127 },
    );
  });

  it('bad input: unknown strings, more steps than available, bad schedule names', () => {
    for (const bad of ['abc', 'ddim', 'ddimx', '10,,5', '-3', '0', 'ddim0', '2.5']) expect(() => spaceTimesteps(1000, bad), bad).toThrow(DitMoeError);
    expect(() => spaceTimesteps(1000, '1001')).toThrow(/cannot divide a section of 1000 steps into 1001/);
    expect(() => spaceTimesteps(1000, 'ddim1001')).toThrow(DitMoeError);
    expect(() => spaceTimesteps(100, '10,60')).toThrow(DitMoeError);
    expect(() => namedBetas('quadratic', 1000)).toThrow(/unknown beta schedule/);
    expect(() => makeSchedule([0.1, 0, 0.2])).toThrow(DitMoeError);
    expect(() => makeSchedule(namedBetas('linear', 10))).toThrow(/beta .* every beta must be in \(0, 1\]/);
    expect(spaceTimesteps(10, '')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
