/**
 * The fast samplers of issue 15: DPM-Solver / DPM-Solver++ (ref/diffusion/dpmSolver.ts) and Heun
 * (ref/diffusion/heun.ts).
 *
 * Golden (golden/tiny.solvers.safetensors: the authors' dpm_solver_pytorch.py at commit 52bc3fb,
 * and Heun on the official model's velocity): every output within 1e-3 relative to
 * max(1, max|golden|) after the whole loop, on every backend, as the issue asks. The data
 * predictions (x − σε)/α of the random tiny model reach ~700, so the loop amplifies the model's
 * own float32 differences (~1e-6) by up to 1/α_T ≈ 150; what we reach is printed (≈1e-6).
 *
 * Properties, each able to fail on a wrong coefficient:
 *  - exactness: for a model whose data (noise) prediction is constant, DPM-Solver++ (DPM-Solver)
 *    of every order, method and spacing solves the ODE exactly: x_end = (σ_e/σ_T) x_T +
 *    (α_e − α_T σ_e/σ_T) c (resp. (α_e/α_T) x_T − (α_e σ_T/α_T − σ_e) c); tolerance 1e-5 relative
 *    (a few dozen float32 roundings);
 *  - order of convergence: for a data prediction that varies smoothly with λ (not with x), the
 *    exact solution is x_T σ_e/σ_T + σ_e ∫ e^λ x̂_0(λ) dλ (Simpson, float64); doubling the steps
 *    shrinks the error by about 2^order (we ask ≥ 2^(order−0.6): first order 1.3×, second 2.6×,
 *    third 5.3×; measured 2.5, 4.1–6.2 and 8+);
 *  - Heun is second order on dz/dt = k·z (error ratio ≥ 3 when the steps double), Euler first;
 *  - evaluation counts; bad options are one-line errors naming the flag.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { golden, gt, expectClose, GOLDEN_DIR } from './golden.js';
import { backends } from './backends.js';
import { asFloat32, asNumbers } from '../io/safetensors.js';
import { DitMoeError } from '../core/errors.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { namedBetas } from '../ref/diffusion/schedule.js';
import { sampleRectifiedFlow, type DiffusionModelFn } from '../ref/diffusion/samplers.js';
import { DpmSolver, discreteSchedule, flowSchedule, getTimeSteps, linspace32, sampleDpmSolver, type DpmAlgorithm, type DpmMethod, type DpmModel, type DpmSkipType, type NoiseScheduleVP } from '../ref/diffusion/dpmSolver.js';
import { sampleHeun } from '../ref/diffusion/heun.js';

const RTOL_LOOP = 1e-3;

describe.each(backends())('golden solvers (tiny model) [%s]', (_name, kernels) => {
  const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.safetensors'))), 'tiny.model', kernels);
  let calls = 0;
  const fn: DiffusionModelFn = (x, shape, t, y) => {
    calls++;
    return model.forward(x, shape, t, y);
  };
  const g = golden('tiny.solvers.safetensors');
  const recipe = JSON.parse(g.metadata.recipe);
  const z = asFloat32(gt(g, 'in.z'));
  const shape = gt(g, 'in.z').shape;
  const y = Int32Array.from(asNumbers(gt(g, 'in.y')));
  const guided = (s: number) => ({ scale: s, nullClass: 10, channels: 'all' as const });
  const check = (name: string, out: Float32Array) => {
    const d = expectClose(name, out, gt(g, name), RTOL_LOOP);
    // what we reach is far tighter (≤ 1.1e-6): guard it at 2e-5, room for another summation order
    expect(d.rel, name).toBeLessThan(2e-5);
    console.log(`${_name} ${name}: max abs error ${d.maxAbs.toExponential(2)}, relative ${d.rel.toExponential(2)}`);
  };

  it('the recipe is what these tests assume', () => {
    const common = { t_start: 1, t_end: 0.001, lower_order_final: true, denoise_to_zero: false };
    expect(recipe['out.dpmpp2m_10']).toMatchObject({ ...common, algorithm_type: 'dpmsolver++', steps: 10, order: 2, skip_type: 'time_uniform', method: 'multistep', guidance: { scale: 4, null_class: 10, channels: 'all' } });
    expect(recipe['out.dpmpp3m_8_logsnr']).toMatchObject({ ...common, algorithm_type: 'dpmsolver++', steps: 8, order: 3, skip_type: 'logSNR', method: 'multistep', guidance: { scale: 4, null_class: 10, channels: 'all' } });
    expect(recipe['out.dpm2s_6_quadratic']).toMatchObject({ ...common, algorithm_type: 'dpmsolver', steps: 6, order: 2, skip_type: 'time_quadratic', method: 'singlestep', guidance: null });
    expect(recipe['out.heun6']).toMatchObject({ sampler: 'heun', steps: 6, guidance: { scale: 2, null_class: 10, channels: 'all' } });
    expect(recipe['out.heun3']).toMatchObject({ sampler: 'heun', steps: 3, guidance: null });
  });

  it('DPM-Solver++ multistep, order 2, 10 steps, time_uniform, guidance 4: one model call per step', () => {
    calls = 0;
    check('out.dpmpp2m_10', sampleDpmSolver({ model: fn, z, shape, y, guidance: guided(4), prediction: 'noise', steps: 10, order: 2, skipType: 'time_uniform', method: 'multistep' }));
    expect(calls).toBe(10);
  });

  it('DPM-Solver++ multistep, order 3, 8 steps, logSNR, guidance 4', () => {
    check('out.dpmpp3m_8_logsnr', sampleDpmSolver({ model: fn, z, shape, y, guidance: guided(4), prediction: 'noise', steps: 8, order: 3, skipType: 'logSNR', method: 'multistep' }));
  });

  it('DPM-Solver (noise prediction) singlestep, order 2, 6 steps, time_quadratic, no guidance', () => {
    calls = 0;
    check('out.dpm2s_6_quadratic', sampleDpmSolver({ model: fn, z, shape, y, guidance: null, prediction: 'noise', algorithm: 'dpmsolver', steps: 6, order: 2, skipType: 'time_quadratic', method: 'singlestep' }));
    expect(calls).toBe(6);
  });

  it('Heun for the rectified flow: 6 steps with guidance 2 (2·(2n − 1) passes), 3 steps without', () => {
    calls = 0;
    check('out.heun6', sampleHeun({ model: fn, z, shape, y, guidance: guided(2), steps: 6 }));
    expect(calls).toBe(2 * (2 * 6 - 1));
    check('out.heun3', sampleHeun({ model: fn, z, shape, y, guidance: null, steps: 3 }));
  });
});

describe('DPM-Solver details', () => {
  it('torch.linspace in float32: exact ends, symmetric halves', () => {
    const t = linspace32(1, 0.001, 11);
    expect(t[0]).toBe(1);
    expect(t[10]).toBe(Math.fround(0.001));
    expect(t[5]).toBe(Math.fround(Math.fround(0.001) - Math.fround(Math.fround(Math.fround(Math.fround(0.001) - 1) / 10) * 5)));
  });

  it('the discrete schedule: log α at t_n = (n + 1)/N is ½ Σ log(1 − β), λ inverts', () => {
    const betas = namedBetas('linear', 1000);
    const ns = discreteSchedule(betas);
    let acc = 0;
    for (let n = 0; n < 1000; n++) {
      acc += Math.log(1 - betas[n]);
      if (n % 111 === 0 || n === 999) expect(Math.abs(ns.marginalLogMeanCoeff((n + 1) / 1000) - 0.5 * acc)).toBeLessThan(2e-6 * (1 + Math.abs(acc)));
    }
    for (const t of [0.001, 0.02, 0.3, 0.77, 1]) expect(Math.abs(ns.inverseLambda(ns.marginalLambda(t)) - t)).toBeLessThan(1e-4);
    // the model is fed 1000·(t − 1/N): 0 at the end, 999 at the start
    expect(ns.modelInputTime(0.001)).toBe(0);
    expect(ns.modelInputTime(1)).toBeCloseTo(999, 3);
  });

  const betas = namedBetas('linear', 1000);
  const vp = discreteSchedule(betas);
  const flow = flowSchedule();
  const D = 6;
  const x0 = Float32Array.from({ length: D }, (_, i) => 0.7 * Math.sin(i + 1));
  const zT = Float32Array.from({ length: D }, (_, i) => Math.cos(3 * i));
  const constant = (c: Float32Array): DpmModel => ({ data: () => c, noise: () => c });
  const combos: [DpmMethod, number, DpmSkipType][] = [];
  for (const m of ['multistep', 'singlestep'] as DpmMethod[]) for (const o of [1, 2, 3]) for (const s of ['time_uniform', 'logSNR', 'time_quadratic'] as DpmSkipType[]) combos.push([m, o, s]);

  it.each(combos)('exact for a constant prediction: %s, order %d, %s (++ and noise; ++ on the flow too)', (method, order, skipType) => {
    const run = (ns: NoiseScheduleVP, alg: DpmAlgorithm, tEnd: number) => new DpmSolver(constant(x0), ns, alg).sample(zT, { steps: 7, order, method, skipType, tEnd });
    const aT = vp.marginalAlpha(1);
    const sT = vp.marginalStd(1);
    const aE = vp.marginalAlpha(0.001);
    const sE = vp.marginalStd(0.001);
    const exactData = Float64Array.from(zT, (v, i) => (sE / sT) * v + (aE - (aT * sE) / sT) * x0[i]);
    const exactNoise = Float64Array.from(zT, (v, i) => (aE / aT) * v - ((aE * sT) / aT - sE) * x0[i]);
    expectClose('dpmsolver++', run(vp, 'dpmsolver++', 0.001), exactData, 1e-5);
    expectClose('dpmsolver', run(vp, 'dpmsolver', 0.001), exactNoise, 1e-5);
    if (method === 'multistep' && skipType !== 'logSNR') expectClose('dpmsolver++ flow, to t = 0', run(flow, 'dpmsolver++', 0), x0, 1e-5);
  });

  /** x̂_0(λ) = c·tanh(λ/3) + d: smooth in λ, independent of x, so the exact solution is an integral. */
  const shapeFn = (lambda: number) => Math.tanh(lambda / 3);
  const smooth = (ns: NoiseScheduleVP): DpmModel => ({
    data: (_x, t) => Float32Array.from(x0, (c) => c * shapeFn(ns.marginalLambda(t)) + 0.1),
    noise: (x, t) => {
      const a = ns.marginalAlpha(t);
      const s = ns.marginalStd(t);
      return Float32Array.from(x, (v, i) => (v - a * (x0[i] * shapeFn(ns.marginalLambda(t)) + 0.1)) / s);
    },
  });
  /** x_e = (σ_e/σ_T) x_T + σ_e ∫_{λ_T}^{λ_e} e^λ x̂_0(λ) dλ   (DPM-Solver++ eq. 8; Simpson, 20000 intervals) */
  function exactSmooth(ns: NoiseScheduleVP): Float64Array {
    const lT = ns.marginalLambda(1);
    const lE = ns.marginalLambda(0.001);
    const n = 20000;
    const hh = (lE - lT) / n;
    let intA = 0;
    for (let k = 0; k <= n; k++) {
      const l = lT + k * hh;
      const w = k === 0 || k === n ? 1 : k % 2 ? 4 : 2;
      intA += w * Math.exp(l) * shapeFn(l);
    }
    let intB = 0;
    for (let k = 0; k <= n; k++) {
      const l = lT + k * hh;
      const w = k === 0 || k === n ? 1 : k % 2 ? 4 : 2;
      intB += w * Math.exp(l);
    }
    intA *= hh / 3;
    intB *= hh / 3;
    const sT = ns.marginalStd(1);
    const sE = ns.marginalStd(0.001);
    return Float64Array.from(zT, (v, i) => (sE / sT) * v + sE * (x0[i] * intA + 0.1 * intB));
  }
  const errOf = (a: Float32Array, b: Float64Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

  // [algorithm, method, order, steps n (then 2n, or 2n + 1 for singlestep 3), the global order we expect]
  // Singlestep steps are chosen so that every step runs at the full order (DPM-Solver-fast spends
  // 3m + 2 evaluations as m third-order steps and one second-order step). A multistep solver of
  // order 3 warms up with a first-order step whose local error O(h²) bounds the global order by 2,
  // so there we also ask it to beat order 2 at the same steps.
  it.each([
    ['dpmsolver++', 'multistep', 1, 6, 1],
    ['dpmsolver++', 'multistep', 2, 6, 2],
    ['dpmsolver++', 'multistep', 3, 6, 2],
    ['dpmsolver++', 'singlestep', 2, 8, 2],
    ['dpmsolver++', 'singlestep', 3, 11, 3],
    ['dpmsolver', 'multistep', 2, 6, 2],
    ['dpmsolver', 'multistep', 3, 6, 2],
    ['dpmsolver', 'singlestep', 2, 8, 2],
    ['dpmsolver', 'singlestep', 3, 11, 3],
  ] as [DpmAlgorithm, DpmMethod, number, number, number][])('%s %s order %d converges at its order (logSNR steps, no lower-order final)', (alg, method, order, n, expected) => {
    const exact = exactSmooth(vp);
    const err = (steps: number, ord = order) => errOf(new DpmSolver(smooth(vp), vp, alg).sample(zT, { steps, order: ord, method, skipType: 'logSNR', lowerOrderFinal: false }), exact);
    const n2 = method === 'singlestep' && order === 3 ? 2 * n + 1 : 2 * n;
    const e1 = err(n);
    const e2 = err(n2);
    expect(e1).toBeGreaterThan(1e-4); // well above float32 noise, so the ratio means something
    expect(e1 / e2).toBeGreaterThan(2 ** (expected - 0.6));
    if (method === 'multistep' && order === 3) expect(e2).toBeLessThan(err(n2, 2));
  });

  /** ∫_{a}^{b} g(λ) dλ by Simpson's rule (float64, 2000 intervals) */
  const simpson = (g: (l: number) => number, a: number, b: number) => {
    const n = 2000;
    const hh = (b - a) / n;
    let s = 0;
    for (let k = 0; k <= n; k++) s += (k === 0 || k === n ? 1 : k % 2 ? 4 : 2) * g(a + k * hh);
    return (s * hh) / 3;
  };
  /** One step s → t of x' = f(λ) (a prediction that depends on λ only), exact in float64. */
  const exactStep = (alg: DpmAlgorithm, p: (l: number) => number, xs: Float32Array, s: number, t: number) => {
    const [ls, lt] = [vp.marginalLambda(s), vp.marginalLambda(t)];
    if (alg === 'dpmsolver++') {
      const I = simpson((l) => Math.exp(l) * p(l), ls, lt);
      return Float64Array.from(xs, (v, i) => (vp.marginalStd(t) / vp.marginalStd(s)) * v + vp.marginalStd(t) * I * x0[i]);
    }
    const I = simpson((l) => Math.exp(-l) * p(l), ls, lt);
    return Float64Array.from(xs, (v, i) => (vp.marginalAlpha(t) / vp.marginalAlpha(s)) * v - vp.marginalAlpha(t) * I * x0[i]);
  };
  const predicting = (p: (l: number) => number): DpmModel => {
    const m = (_x: Float32Array, t: number) => Float32Array.from(x0, (c) => c * p(vp.marginalLambda(t)));
    return { data: m, noise: m };
  };

  it.each(['dpmsolver++', 'dpmsolver'] as DpmAlgorithm[])('%s: one third-order step (singlestep, or multistep from exact history) is exact for a prediction linear in λ', (alg) => {
    const lin = (l: number) => 0.3 + 0.2 * l;
    const [s, t] = [0.6, 0.35];
    const single = new DpmSolver(predicting(lin), vp, alg).singlestepThirdUpdate(zT, s, t, 0.4, 0.7);
    expectClose('singlestep 3', single, exactStep(alg, lin, zT, s, t), 1e-5);
    const times = [0.9, 0.75, 0.6];
    const solver = new DpmSolver(predicting(lin), vp, alg);
    const models = times.map((tt) => solver.modelFn(zT, tt));
    expectClose('multistep 3', solver.multistepThirdUpdate(zT, models, times, t), exactStep(alg, lin, zT, 0.6, t), 1e-5);
  });

  it('the time spacings: uniform in t, in λ, in √t', () => {
    const u = getTimeSteps(vp, 'time_uniform', 1, 0.001, 4);
    expect(Array.from(u)).toEqual(Array.from(linspace32(1, 0.001, 5)));
    const l = Array.from(getTimeSteps(vp, 'logSNR', 1, 0.001, 4), (t) => vp.marginalLambda(t));
    for (let i = 1; i < 4; i++) expect(Math.abs(l[i + 1] - l[i] - (l[1] - l[0]))).toBeLessThan(1e-3);
    const q = Array.from(getTimeSteps(vp, 'time_quadratic', 1, 0.001, 4), Math.sqrt);
    for (let i = 1; i < 4; i++) expect(Math.abs(q[i + 1] - q[i] - (q[1] - q[0]))).toBeLessThan(1e-6);
  });

  it('bad options are one-line errors naming the flag', () => {
    const s = new DpmSolver(constant(x0), vp);
    expect(() => s.sample(zT, { steps: 2, order: 3, method: 'multistep' })).toThrow(/--steps: a multistep solver of order 3 needs at least 3 steps, got 2/);
    expect(() => s.sample(zT, { steps: 5, order: 4 })).toThrow(/--order: order must be 1, 2 or 3/);
    expect(() => s.sample(zT, { steps: 0 })).toThrow(DitMoeError);
    expect(() => s.sample(zT, { steps: 5, skipType: 'karras' as DpmSkipType })).toThrow(/--spacing/);
    const model: DiffusionModelFn = (x) => x;
    const o = { model, z: zT, shape: [1, 6, 1, 1], y: Int32Array.of(0), steps: 5 };
    expect(() => sampleDpmSolver({ ...o, prediction: 'velocity', algorithm: 'dpmsolver' })).toThrow(/--sampler: DPM-Solver with noise prediction cannot start a rectified flow/);
    expect(() => sampleDpmSolver({ ...o, prediction: 'velocity', skipType: 'logSNR' })).toThrow(/--spacing/);
    expect(() => sampleHeun({ ...o, steps: 0 })).toThrow(/--steps/);
  });
});

describe('Heun for a rectified flow', () => {
  // dz/dt = k·z (the "model" returns k·x): z(0) = z(1)·e^{−k}
  const k = 0.8;
  const model: DiffusionModelFn = (x) => Float32Array.from(x, (v) => k * v);
  const z = Float32Array.of(1, -0.5, 2, 0.25);
  const o = { model, z, shape: [1, 4, 1, 1], y: Int32Array.of(0) };
  const exact = Float64Array.from(z, (v) => v * Math.exp(-k));
  const err = (x: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - exact[i])), 0);

  it('is second order (Euler first): the error shrinks ≥ 3× (Euler ≈ 2×) when the steps double', () => {
    const h1 = err(sampleHeun({ ...o, steps: 8 }));
    const h2 = err(sampleHeun({ ...o, steps: 16 }));
    const e1 = err(sampleRectifiedFlow({ ...o, steps: 8 }));
    const e2 = err(sampleRectifiedFlow({ ...o, steps: 16 }));
    expect(h1 / h2).toBeGreaterThan(3);
    expect(e1 / e2).toBeLessThan(2.5);
    expect(h1).toBeLessThan(e1 / 3);
  });

  it('DPM-Solver++ on the flow (α = 1 − t, σ = t) converges to the same ODE solution', () => {
    const e = (steps: number, order: number) => err(sampleDpmSolver({ ...o, prediction: 'velocity', steps, order }));
    expect(e(16, 2)).toBeLessThan(e(8, 2) / 2.5);
    expect(e(16, 3)).toBeLessThan(e(16, 1));
  });
});
