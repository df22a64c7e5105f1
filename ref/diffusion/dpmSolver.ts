/**
 * DPM-Solver (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model
 * Sampling in Around 10 Steps", NeurIPS) and DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast
 * Solver for Guided Sampling of Diffusion Probabilistic Models"), transcribed from the authors'
 * reference code `dpm_solver_pytorch.py` (github.com/LuChengTHU/dpm-solver, commit 52bc3fb),
 * function by function; the names below are theirs in camelCase.
 *
 * The diffusion ODE in the half log-SNR λ_t = log α_t − log σ_t (x_t = α_t x_0 + σ_t ε):
 *   noise prediction (DPM-Solver, eq. 3.4):  x_t = (α_t/α_s) x_s − α_t ∫_{λ_s}^{λ_t} e^{−λ} ε̂ dλ
 *   data prediction (DPM-Solver++, eq. 8):   x_t = (σ_t/σ_s) x_s + σ_t ∫_{λ_s}^{λ_t} e^{λ} x̂_0 dλ
 * With h = λ_t − λ_s and φ₁(h) = e^h − 1 (expm1):
 *   first order (= DDIM):      x_t = (α_t/α_s) x_s − σ_t φ₁(h) ε̂_s         (DPM-Solver-1)
 *                              x_t = (σ_t/σ_s) x_s − α_t φ₁(−h) x̂_s          (DPM-Solver++(1))
 *   singlestep 2 and 3:        intermediate points at λ_s + r·h (DPM-Solver Alg. 1 and 2;
 *                              DPM-Solver++ Alg. 1 with 'dpmsolver' type differences)
 *   multistep 2 and 3:         the previous steps' model values as finite differences
 *                              D1, D2 (DPM-Solver++ Alg. 2; DPM-Solver-3 multistep, their eq. 4.x)
 *
 * Noise schedules (`NoiseScheduleVP`): the reference's discrete-time form for DDPM models
 * (log α piecewise linear in t between t_n = (n+1)/N, the model fed t_input = 1000·(t − 1/N)),
 * and for rectified flows α_t = 1 − t, σ_t = t (λ = log((1−t)/t), the model fed t itself).
 *
 * Precision: the reference runs in float32 (betas passed as a float32 tensor); every scalar
 * coefficient and every elementwise operation here is rounded to float32 in the reference's
 * order of operations (Math.fround), so the arithmetic matches PyTorch's to the last bit but for
 * the ulp of its vectorised exp/log.
 */
import { DitMoeError } from '../../core/errors.js';
import { dims, firstChannels, flowVelocity, forwardWithCfg, type SampleOptions } from './samplers.js';
import { namedBetas } from './schedule.js';

const f = Math.fround;

export type DpmAlgorithm = 'dpmsolver' | 'dpmsolver++';
export type DpmMethod = 'multistep' | 'singlestep';
export type DpmSkipType = 'time_uniform' | 'logSNR' | 'time_quadratic';

/** A VP noise schedule as the reference's `NoiseScheduleVP`: scalars of a continuous time t. */
export interface NoiseScheduleVP {
  /** The start of sampling (1). */
  readonly T: number;
  /** The default end of sampling: 1/N for a discrete schedule. */
  readonly tEnd: number;
  /** log α_t */
  marginalLogMeanCoeff(t: number): number;
  /** α_t */
  marginalAlpha(t: number): number;
  /** σ_t */
  marginalStd(t: number): number;
  /** λ_t = log α_t − log σ_t */
  marginalLambda(t: number): number;
  /** t of a given λ */
  inverseLambda(lambda: number): number;
  /** The time the network is fed at continuous time t. */
  modelInputTime(t: number): number;
}

/** float32 exp / log / expm1 / sqrt of a float32 value (torch's float32 math, correctly rounded). */
const exp32 = (x: number) => f(Math.exp(x));
const log32 = (x: number) => f(Math.log(x));
const expm1_32 = (x: number) => f(Math.expm1(x));

/**
 * `torch.linspace(start, end, n)` in float32 (the CPU kernel's scalar path: step = (end − start)/(n − 1)
 * in float32; the first half start + step·i, the second half end − step·(n − 1 − i)).
 */
export function linspace32(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const s = f(start);
  const e = f(end);
  if (n === 1) {
    out[0] = s;
    return out;
  }
  const step = f(f(e - s) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f(s + f(step * i)) : f(e - f(step * (n - 1 - i)));
  return out;
}

/**
 * The reference's `interpolate_fn` for one query: the piecewise-linear function through the
 * keypoints (xp ascending), extended linearly beyond the ends by the outermost segments.
 * float32: start_y + (x − start_x)·(end_y − start_y)/(end_x − start_x). A query equal to a
 * keypoint sorts before it (a stable sort), which picks the segment to its left.
 */
export function interpolate(x: number, xp: Float32Array, yp: Float32Array): number {
  const K = xp.length;
  // position of x among the sorted keypoints: the number of keypoints below it
  let lo = 0;
  let hi = K;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xp[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  const j = lo === 0 ? 0 : lo === K ? K - 2 : lo - 1; // the segment [j, j + 1]
  const sx = xp[j];
  const ex = xp[j + 1];
  const sy = yp[j];
  const ey = yp[j + 1];
  return f(sy + f(f(f(x - sx) * f(ey - sy)) / f(ex - sx)));
}

/**
 * `NoiseScheduleVP('discrete', betas)`: log α_n = ½ Σ_{k≤n} log(1 − β_k) (float32, the cumulative
 * sum accumulated in double as PyTorch's CPU cumsum), at t_n = (n + 1)/N, linear in between;
 * the log-SNR clipped at −5.1 near t = T (`numerical_clip_alpha`, drops the last steps of
 * schedules such as the cosine one; the linear one keeps all 1000).
 *   betas [N]  →  schedule
 */
export function discreteSchedule(betas: ArrayLike<number>): NoiseScheduleVP {
  const N0 = betas.length;
  if (N0 < 2) throw new DitMoeError(`a discrete schedule needs at least 2 betas, got ${N0}`, 'betas');
  let logAlphas = new Float32Array(N0);
  let acc = 0;
  for (let i = 0; i < N0; i++) {
    const b = f(betas[i]);
    if (!(b > 0 && b < 1)) throw new DitMoeError(`beta ${i} is ${betas[i]}; every beta must be in (0, 1)`, 'betas');
    acc += log32(f(1 - b));
    logAlphas[i] = f(0.5 * f(acc));
  }
  // numerical_clip_alpha: λ_n = log α_n − ½ log(1 − α_n²); drop the steps with λ < −5.1
  let below = 0;
  for (let i = 0; i < N0; i++) {
    const la = logAlphas[i];
    const lam = f(la - f(0.5 * log32(f(1 - exp32(f(2 * la))))));
    if (lam < f(-5.1)) below++;
  }
  if (below > 0) logAlphas = logAlphas.slice(0, N0 - below);
  const N = logAlphas.length;
  if (N < 2) throw new DitMoeError('fewer than 2 steps are left after clipping the log-SNR at −5.1', 'betas');
  const tArray = linspace32(0, 1, N + 1).slice(1);
  const flipLogAlpha = logAlphas.slice().reverse();
  const flipT = tArray.slice().reverse();
  const lmc = (t: number) => interpolate(f(t), tArray, logAlphas);
  const invN = f(1 / N);
  return {
    T: 1,
    tEnd: 1 / N,
    marginalLogMeanCoeff: lmc,
    marginalAlpha: (t) => exp32(lmc(t)),
    marginalStd: (t) => f(Math.sqrt(f(1 - exp32(f(2 * lmc(t)))))),
    marginalLambda: (t) => {
      const la = lmc(t);
      return f(la - f(0.5 * log32(f(1 - exp32(f(2 * la))))));
    },
    inverseLambda: (lambda) => {
      // log α = −½ logaddexp(0, −2λ)
      const a = f(-2 * f(lambda));
      const m = Math.max(0, a);
      const lae = f(m + f(Math.log1p(exp32(-Math.abs(a)))));
      return interpolate(f(-0.5 * lae), flipLogAlpha, flipT);
    },
    modelInputTime: (t) => f(f(f(t) - invN) * 1000),
  };
}

/**
 * The rectified flow x_t = (1 − t) x_0 + t z as a VP-type path (not variance preserving, but
 * DPM-Solver++ only needs α, σ and λ): α_t = 1 − t, σ_t = t, λ_t = log((1 − t)/t),
 * t(λ) = 1/(1 + e^λ); from T = 1 (λ = −∞) to 0 (λ = +∞); the model is fed t itself.
 */
export function flowSchedule(): NoiseScheduleVP {
  return {
    T: 1,
    tEnd: 0,
    marginalLogMeanCoeff: (t) => log32(f(1 - f(t))),
    marginalAlpha: (t) => f(1 - f(t)),
    marginalStd: (t) => f(t),
    marginalLambda: (t) => f(log32(f(1 - f(t))) - log32(f(t))),
    inverseLambda: (lambda) => f(1 / (1 + Math.exp(lambda))),
    modelInputTime: (t) => f(t),
  };
}

/** `get_time_steps`: N + 1 times from tT to t0, uniform in t, in λ (logSNR) or in √t (time_quadratic). */
export function getTimeSteps(ns: NoiseScheduleVP, skipType: DpmSkipType, tT: number, t0: number, N: number): Float32Array {
  if (skipType === 'logSNR') {
    const l = linspace32(ns.marginalLambda(f(tT)), ns.marginalLambda(f(t0)), N + 1);
    return l.map((v) => ns.inverseLambda(v));
  }
  if (skipType === 'time_uniform') return linspace32(tT, t0, N + 1);
  if (skipType === 'time_quadratic') return linspace32(Math.sqrt(tT), Math.sqrt(t0), N + 1).map((v) => f(v * v));
  throw new DitMoeError(`unknown time spacing '${skipType as string}' (time_uniform, logSNR, time_quadratic)`, '--spacing');
}

/**
 * `get_orders_and_timesteps_for_singlestep_solver` ("DPM-Solver-fast"): `steps` evaluations spent
 * as singlestep solvers of order ≤ `order`; returns the outer times and each step's order.
 */
export function singlestepOrders(ns: NoiseScheduleVP, steps: number, order: number, skipType: DpmSkipType, tT: number, t0: number): { times: Float32Array; orders: number[] } {
  let K: number;
  let orders: number[];
  if (order === 3) {
    K = Math.floor(steps / 3) + 1;
    if (steps % 3 === 0) orders = [...Array<number>(K - 2).fill(3), 2, 1];
    else if (steps % 3 === 1) orders = [...Array<number>(K - 1).fill(3), 1];
    else orders = [...Array<number>(K - 1).fill(3), 2];
  } else if (order === 2) {
    if (steps % 2 === 0) {
      K = steps / 2;
      orders = Array<number>(K).fill(2);
    } else {
      K = Math.floor(steps / 2) + 1;
      orders = [...Array<number>(K - 1).fill(2), 1];
    }
  } else if (order === 1) {
    K = steps;
    orders = Array<number>(steps).fill(1);
  } else throw new DitMoeError(`order must be 1, 2 or 3, got ${order}`, '--order');
  if (skipType === 'logSNR') return { times: getTimeSteps(ns, skipType, tT, t0, K), orders };
  const all = getTimeSteps(ns, skipType, tT, t0, steps);
  const times = new Float32Array(orders.length + 1);
  let k = 0;
  times[0] = all[0];
  orders.forEach((o, i) => {
    k += o;
    times[i + 1] = all[k];
  });
  return { times, orders };
}

/** The model as the solver sees it: noise ε̂(x, t) and data x̂_0(x, t) predictions at continuous t. */
export interface DpmModel {
  noise(x: Float32Array, t: number): Float32Array;
  data(x: Float32Array, t: number): Float32Array;
}

/** A noise-prediction model ε̂(x, t) (the reference's `model_fn`) as a DpmModel: x̂_0 = (x − σ_t ε̂)/α_t (`data_prediction_fn`). */
export function noisePredictionModel(ns: NoiseScheduleVP, noise: (x: Float32Array, t: number) => Float32Array): DpmModel {
  return {
    noise,
    data: (x, t) => {
      const e = noise(x, t);
      const a = ns.marginalAlpha(t);
      const s = ns.marginalStd(t);
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = f(f(x[i] - f(s * e[i])) / a);
      return out;
    },
  };
}

/** A velocity model v̂(x, t) of a rectified flow as a DpmModel: x̂_0 = x − t·v̂, ε̂ = x + (1 − t)·v̂. */
export function velocityModel(velocity: (x: Float32Array, t: number) => Float32Array): DpmModel {
  return {
    data: (x, t) => {
      const v = velocity(x, t);
      const tt = f(t);
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = f(x[i] - f(tt * v[i]));
      return out;
    },
    noise: (x, t) => {
      const v = velocity(x, t);
      const a = f(1 - f(t));
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = f(x[i] + f(a * v[i]));
      return out;
    },
  };
}

// elementwise float32 helpers: the reference's tensor expressions, one rounding per operation
/** a·x − b·y */
function axmby(a: number, x: Float32Array, b: number, y: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(f(a * x[i]) - f(b * y[i]));
  return out;
}
/** u − c·(p − q) (sign −1) or u + c·(p − q) (sign +1) */
function addDiff(u: Float32Array, sign: 1 | -1, c: number, p: Float32Array, q: Float32Array): Float32Array {
  const out = new Float32Array(u.length);
  for (let i = 0; i < u.length; i++) {
    const d = f(c * f(p[i] - q[i]));
    out[i] = sign > 0 ? f(u[i] + d) : f(u[i] - d);
  }
  return out;
}
/** u + sign·c·d */
function addScaled(u: Float32Array, sign: 1 | -1, c: number, d: Float32Array): Float32Array {
  const out = new Float32Array(u.length);
  for (let i = 0; i < u.length; i++) {
    const v = f(c * d[i]);
    out[i] = sign > 0 ? f(u[i] + v) : f(u[i] - v);
  }
  return out;
}
/** c·(p − q) */
function scaledDiff(c: number, p: Float32Array, q: Float32Array): Float32Array {
  const out = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = f(c * f(p[i] - q[i]));
  return out;
}

/** The solver: the reference's `DPM_Solver` (solver_type 'dpmsolver', no thresholding or correctors). */
export class DpmSolver {
  /** Model evaluations so far. */
  evaluations = 0;

  constructor(
    readonly model: DpmModel,
    readonly ns: NoiseScheduleVP,
    readonly algorithm: DpmAlgorithm = 'dpmsolver++',
  ) {}

  /** `model_fn`: x̂_0 for DPM-Solver++, ε̂ for DPM-Solver. */
  modelFn(x: Float32Array, t: number): Float32Array {
    this.evaluations++;
    return this.algorithm === 'dpmsolver++' ? this.model.data(x, t) : this.model.noise(x, t);
  }

  /** `dpm_solver_first_update`: DPM-Solver-1 (DDIM) from s to t. */
  firstUpdate(x: Float32Array, s: number, t: number, modelS?: Float32Array): Float32Array {
    const ns = this.ns;
    const h = f(ns.marginalLambda(t) - ns.marginalLambda(s));
    const m = modelS ?? this.modelFn(x, s);
    if (this.algorithm === 'dpmsolver++') {
      const phi1 = expm1_32(-h);
      return axmby(f(ns.marginalStd(t) / ns.marginalStd(s)), x, f(ns.marginalAlpha(t) * phi1), m);
    }
    const phi1 = expm1_32(h);
    return axmby(exp32(f(ns.marginalLogMeanCoeff(t) - ns.marginalLogMeanCoeff(s))), x, f(ns.marginalStd(t) * phi1), m);
  }

  /** `singlestep_dpm_solver_second_update` ('dpmsolver' type): one intermediate point at λ_s + r1·h. */
  singlestepSecondUpdate(x: Float32Array, s: number, t: number, r1 = 0.5): Float32Array {
    const ns = this.ns;
    const lambdaS = ns.marginalLambda(s);
    const h = f(ns.marginalLambda(t) - lambdaS);
    const s1 = ns.inverseLambda(f(lambdaS + f(r1 * h)));
    const m = this.modelFn(x, s);
    if (this.algorithm === 'dpmsolver++') {
      const phi11 = expm1_32(f(-r1 * h));
      const phi1 = expm1_32(-h);
      const aPhi1 = f(ns.marginalAlpha(t) * phi1);
      const xS1 = axmby(f(ns.marginalStd(s1) / ns.marginalStd(s)), x, f(ns.marginalAlpha(s1) * phi11), m);
      const m1 = this.modelFn(xS1, s1);
      return addDiff(axmby(f(ns.marginalStd(t) / ns.marginalStd(s)), x, aPhi1, m), -1, f(f(0.5 / r1) * aPhi1), m1, m);
    }
    const phi11 = expm1_32(f(r1 * h));
    const phi1 = expm1_32(h);
    const las = ns.marginalLogMeanCoeff(s);
    const sPhi1 = f(ns.marginalStd(t) * phi1);
    const xS1 = axmby(exp32(f(ns.marginalLogMeanCoeff(s1) - las)), x, f(ns.marginalStd(s1) * phi11), m);
    const m1 = this.modelFn(xS1, s1);
    return addDiff(axmby(exp32(f(ns.marginalLogMeanCoeff(t) - las)), x, sPhi1, m), -1, f(f(0.5 / r1) * sPhi1), m1, m);
  }

  /** `singlestep_dpm_solver_third_update` ('dpmsolver' type): intermediate points at λ_s + r1·h and λ_s + r2·h. */
  singlestepThirdUpdate(x: Float32Array, s: number, t: number, r1 = 1 / 3, r2 = 2 / 3): Float32Array {
    const ns = this.ns;
    const lambdaS = ns.marginalLambda(s);
    const h = f(ns.marginalLambda(t) - lambdaS);
    const s1 = ns.inverseLambda(f(lambdaS + f(r1 * h)));
    const s2 = ns.inverseLambda(f(lambdaS + f(r2 * h)));
    const m = this.modelFn(x, s);
    const r2h = f(r2 * h);
    if (this.algorithm === 'dpmsolver++') {
      const phi11 = expm1_32(f(-r1 * h));
      const phi12 = expm1_32(f(-r2 * h));
      const phi1 = expm1_32(-h);
      const phi22 = f(f(expm1_32(f(-r2 * h)) / r2h) + 1);
      const phi2 = f(f(phi1 / h) + 1);
      const sigS = ns.marginalStd(s);
      const aS2 = ns.marginalAlpha(s2);
      const xS1 = axmby(f(ns.marginalStd(s1) / sigS), x, f(ns.marginalAlpha(s1) * phi11), m);
      const m1 = this.modelFn(xS1, s1);
      const xS2 = addDiff(axmby(f(ns.marginalStd(s2) / sigS), x, f(aS2 * phi12), m), 1, f(f(r2 / r1) * f(aS2 * phi22)), m1, m);
      const m2 = this.modelFn(xS2, s2);
      const aT = ns.marginalAlpha(t);
      return addDiff(axmby(f(ns.marginalStd(t) / sigS), x, f(aT * phi1), m), 1, f(f(1 / r2) * f(aT * phi2)), m2, m);
    }
    const phi11 = expm1_32(f(r1 * h));
    const phi12 = expm1_32(f(r2 * h));
    const phi1 = expm1_32(h);
    const phi22 = f(f(expm1_32(r2h) / r2h) - 1);
    const phi2 = f(f(phi1 / h) - 1);
    const las = ns.marginalLogMeanCoeff(s);
    const sigS2 = ns.marginalStd(s2);
    const xS1 = axmby(exp32(f(ns.marginalLogMeanCoeff(s1) - las)), x, f(ns.marginalStd(s1) * phi11), m);
    const m1 = this.modelFn(xS1, s1);
    const xS2 = addDiff(axmby(exp32(f(ns.marginalLogMeanCoeff(s2) - las)), x, f(sigS2 * phi12), m), -1, f(f(r2 / r1) * f(sigS2 * phi22)), m1, m);
    const m2 = this.modelFn(xS2, s2);
    const sigT = ns.marginalStd(t);
    return addDiff(axmby(exp32(f(ns.marginalLogMeanCoeff(t) - las)), x, f(sigT * phi1), m), -1, f(f(1 / r2) * f(sigT * phi2)), m2, m);
  }

  /** `multistep_dpm_solver_second_update` ('dpmsolver' type): from the last two model values. */
  multistepSecondUpdate(x: Float32Array, models: Float32Array[], times: number[], t: number): Float32Array {
    const ns = this.ns;
    const [m1, m0] = models.slice(-2);
    const [t1, t0] = times.slice(-2);
    const l0 = ns.marginalLambda(t0);
    const h0 = f(l0 - ns.marginalLambda(t1));
    const h = f(ns.marginalLambda(t) - l0);
    const r0 = f(h0 / h);
    const d10 = scaledDiff(f(1 / r0), m0, m1);
    if (this.algorithm === 'dpmsolver++') {
      const aPhi1 = f(ns.marginalAlpha(t) * expm1_32(-h));
      return addScaled(axmby(f(ns.marginalStd(t) / ns.marginalStd(t0)), x, aPhi1, m0), -1, f(0.5 * aPhi1), d10);
    }
    const sPhi1 = f(ns.marginalStd(t) * expm1_32(h));
    return addScaled(axmby(exp32(f(ns.marginalLogMeanCoeff(t) - ns.marginalLogMeanCoeff(t0))), x, sPhi1, m0), -1, f(0.5 * sPhi1), d10);
  }

  /** `multistep_dpm_solver_third_update`: from the last three model values. */
  multistepThirdUpdate(x: Float32Array, models: Float32Array[], times: number[], t: number): Float32Array {
    const ns = this.ns;
    const [m2, m1, m0] = models.slice(-3);
    const [t2, t1, t0] = times.slice(-3);
    const l1 = ns.marginalLambda(t1);
    const l0 = ns.marginalLambda(t0);
    const h1 = f(l1 - ns.marginalLambda(t2));
    const h0 = f(l0 - l1);
    const h = f(ns.marginalLambda(t) - l0);
    const r0 = f(h0 / h);
    const r1 = f(h1 / h);
    const d10 = scaledDiff(f(1 / r0), m0, m1);
    const d11 = scaledDiff(f(1 / r1), m1, m2);
    const r01 = f(r0 + r1);
    const d1 = addDiff(d10, 1, f(r0 / r01), d10, d11);
    const d2 = scaledDiff(f(1 / r01), d10, d11);
    if (this.algorithm === 'dpmsolver++') {
      const phi1 = expm1_32(-h);
      const phi2 = f(f(phi1 / h) + 1);
      const phi3 = f(f(phi2 / h) - 0.5);
      const aT = ns.marginalAlpha(t);
      const u = addScaled(axmby(f(ns.marginalStd(t) / ns.marginalStd(t0)), x, f(aT * phi1), m0), 1, f(aT * phi2), d1);
      return addScaled(u, -1, f(aT * phi3), d2);
    }
    const phi1 = expm1_32(h);
    const phi2 = f(f(phi1 / h) - 1);
    const phi3 = f(f(phi2 / h) - 0.5);
    const sT = ns.marginalStd(t);
    const u = addScaled(axmby(exp32(f(ns.marginalLogMeanCoeff(t) - ns.marginalLogMeanCoeff(t0))), x, f(sT * phi1), m0), -1, f(sT * phi2), d1);
    return addScaled(u, -1, f(sT * phi3), d2);
  }

  multistepUpdate(x: Float32Array, models: Float32Array[], times: number[], t: number, order: number): Float32Array {
    if (order === 1) return this.firstUpdate(x, times[times.length - 1], t, models[models.length - 1]);
    if (order === 2) return this.multistepSecondUpdate(x, models, times, t);
    return this.multistepThirdUpdate(x, models, times, t);
  }

  singlestepUpdate(x: Float32Array, s: number, t: number, order: number, r1?: number, r2?: number): Float32Array {
    if (order === 1) return this.firstUpdate(x, s, t);
    if (order === 2) return this.singlestepSecondUpdate(x, s, t, r1);
    return this.singlestepThirdUpdate(x, s, t, r1, r2);
  }

  /**
   * `sample` (methods 'multistep' and 'singlestep'; denoise_to_zero false): x at t_start → x at t_end
   * in `steps` model evaluations. `onStep(i, n, x)` after each of the n outer steps.
   * A step that ends at σ_t = 0 (a flow's t = 0, λ = ∞) is taken at first order: there the
   * higher-order terms' ratio r = h_prev/h vanishes and x_t is the last data prediction.
   */
  sample(x0: Float32Array, o: DpmSampleOptions): Float32Array {
    const ns = this.ns;
    const steps = o.steps;
    const order = o.order ?? 2;
    const skip = o.skipType ?? 'time_uniform';
    const method = o.method ?? 'multistep';
    const lowerOrderFinal = o.lowerOrderFinal ?? true;
    const tT = o.tStart ?? ns.T;
    const t0 = o.tEnd ?? ns.tEnd;
    checkDpmOptions(steps, order, method);
    let x = x0;
    if (method === 'multistep') {
      const times = getTimeSteps(ns, skip, tT, t0, steps);
      const tPrev = [times[0]];
      const mPrev = [this.modelFn(x, times[0])];
      for (let step = 1; step < order; step++) {
        const t = times[step];
        x = this.multistepUpdate(x, mPrev, tPrev, t, ns.marginalStd(t) === 0 ? 1 : step);
        o.onStep?.(step - 1, steps, x);
        tPrev.push(t);
        mPrev.push(this.modelFn(x, t));
      }
      for (let step = order; step <= steps; step++) {
        const t = times[step];
        // the reference lowers the order at the end only for steps < 10
        let stepOrder = lowerOrderFinal && steps < 10 ? Math.min(order, steps + 1 - step) : order;
        if (ns.marginalStd(t) === 0) stepOrder = 1;
        x = this.multistepUpdate(x, mPrev, tPrev, t, stepOrder);
        o.onStep?.(step - 1, steps, x);
        for (let i = 0; i < order - 1; i++) {
          tPrev[i] = tPrev[i + 1];
          mPrev[i] = mPrev[i + 1];
        }
        tPrev[order - 1] = t;
        // the final model value is not needed
        if (step < steps) mPrev[order - 1] = this.modelFn(x, t);
      }
      return x;
    }
    const { times, orders } = singlestepOrders(ns, steps, order, skip, tT, t0);
    orders.forEach((ord, step) => {
      const s = times[step];
      const t = times[step + 1];
      const inner = getTimeSteps(ns, skip, s, t, ord);
      const lam = Array.from(inner, (v) => ns.marginalLambda(v));
      const h = f(lam[ord] - lam[0]);
      const r1 = ord <= 1 ? undefined : f(f(lam[1] - lam[0]) / h);
      const r2 = ord <= 2 ? undefined : f(f(lam[2] - lam[0]) / h);
      x = this.singlestepUpdate(x, s, t, ns.marginalStd(t) === 0 ? 1 : ord, r1, r2);
      o.onStep?.(step, orders.length, x);
    });
    return x;
  }
}

export interface DpmSampleOptions {
  /** Model evaluations (NFE). */
  steps: number;
  /** 1, 2 or 3 (default 2). */
  order?: number;
  /** Default 'time_uniform'. */
  skipType?: DpmSkipType;
  /** Default 'multistep'. */
  method?: DpmMethod;
  /** Lower orders in the last steps (multistep, steps < 10), default true. */
  lowerOrderFinal?: boolean;
  /** Default: the schedule's T (1). */
  tStart?: number;
  /** Default: the schedule's end (1/N for a discrete schedule, 0 for a flow). */
  tEnd?: number;
  onStep?: (i: number, n: number, x: Float32Array) => void;
}

/** Bad combinations of steps, order and method, as one-line errors naming the flag. */
export function checkDpmOptions(steps: number, order: number, method: DpmMethod): void {
  if (!Number.isInteger(steps) || steps < 1) throw new DitMoeError(`steps must be a positive integer, got ${steps}`, '--steps');
  if (![1, 2, 3].includes(order)) throw new DitMoeError(`order must be 1, 2 or 3, got ${order}`, '--order');
  if (method !== 'multistep' && method !== 'singlestep') throw new DitMoeError(`unknown method '${method as string}' (multistep, singlestep)`, '--method');
  if (method === 'multistep' && steps < order) throw new DitMoeError(`a multistep solver of order ${order} needs at least ${order} steps, got ${steps}`, '--steps');
}

export interface DpmSolverSampleOptions extends SampleOptions, Omit<DpmSampleOptions, 'onStep'> {
  /** 'dpmsolver++' (data prediction, default) or 'dpmsolver' (noise prediction). */
  algorithm?: DpmAlgorithm;
  /**
   * What the network predicts: 'noise' (a DDPM model: ε in its first C output channels, on the
   * discrete schedule of `betas`) or 'velocity' (a rectified flow, α_t = 1 − t, σ_t = t).
   */
  prediction: 'noise' | 'velocity';
  /** The DDPM betas (default: the official linear schedule of 1000 steps). */
  betas?: ArrayLike<number>;
}

/**
 * A DiT sampled by DPM-Solver(++): the network wrapped as the reference's `model_wrapper`
 * (classifier-free guidance u + s·(c − u) on the first C channels in one doubled batch for a
 * DDPM model; two passes for a flow, as `RectifiedFlow.sample`), then `DPM_Solver.sample`.
 * DPM-Solver (noise prediction) cannot start a flow at t = 1 (α = 0): asked for, it is an error.
 * onStep's x_0 prediction is the data prediction of the step's last model evaluation.
 *   z [N, C, H, W]  →  x [N, C, H, W]
 */
export function sampleDpmSolver(o: DpmSolverSampleOptions): Float32Array {
  const { N, C, H, W, HW } = dims(o);
  const shape = [N, C, H, W];
  const algorithm = o.algorithm ?? 'dpmsolver++';
  if (algorithm !== 'dpmsolver++' && algorithm !== 'dpmsolver') throw new DitMoeError(`unknown algorithm '${algorithm as string}' (dpmsolver++, dpmsolver)`, '--sampler');
  let ns: NoiseScheduleVP;
  let model: DpmModel;
  if (o.prediction === 'noise') {
    ns = discreteSchedule(o.betas ?? namedBetas('linear', 1000));
    const schedule = ns;
    model = noisePredictionModel(ns, (x, t) => {
      const out = forwardWithCfg(o.model, x, shape, new Float32Array(N).fill(schedule.modelInputTime(t)), o.y, o.guidance);
      return firstChannels(out, N, out.length / (N * HW), C, HW);
    });
  } else if (o.prediction === 'velocity') {
    if (algorithm === 'dpmsolver') throw new DitMoeError('DPM-Solver with noise prediction cannot start a rectified flow at t = 1 (α = 0); use DPM-Solver++ (dpm++2m, dpm++3m)', '--sampler');
    if ((o.skipType ?? 'time_uniform') === 'logSNR') throw new DitMoeError('a rectified flow runs from λ = −∞ to +∞; use time_uniform or time_quadratic spacing', '--spacing');
    if ((o.method ?? 'multistep') !== 'multistep') throw new DitMoeError('a rectified flow starts at λ = −∞, where a singlestep solver has no intermediate point; use a multistep solver', '--sampler');
    ns = flowSchedule();
    model = velocityModel((x, t) => flowVelocity(o.model, x, shape, new Float32Array(N).fill(ns.modelInputTime(t)), o.y, o.guidance));
  } else throw new DitMoeError(`unknown prediction '${o.prediction as string}' (noise, velocity)`, 'prediction');
  // keep the last data prediction for onStep
  let lastX0: Float32Array = new Float32Array(0);
  const schedule = ns;
  const tracked: DpmModel = {
    data: (x, t) => (lastX0 = model.data(x, t)),
    noise: (x, t) => {
      const e = model.noise(x, t);
      if (o.onStep) {
        const a = schedule.marginalAlpha(t);
        const s = schedule.marginalStd(t);
        lastX0 = Float32Array.from(x, (v, i) => (v - s * e[i]) / a);
      }
      return e;
    },
  };
  const solver = new DpmSolver(tracked, ns, algorithm);
  return solver.sample(Float32Array.from(o.z), { ...o, onStep: o.onStep && ((i, n, x) => o.onStep!(i, n, x, lastX0)) });
}
