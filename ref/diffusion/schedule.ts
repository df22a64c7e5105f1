/**
 * Noise schedules of the Gaussian diffusion (Ho et al. 2020, "DDPM"; Nichol & Dhariwal 2021,
 * "Improved DDPM"), as the official `gaussian_diffusion.py` builds them: the betas and every
 * array derived from them, all in float64 "for accuracy". Samplers and losses read these
 * arrays at an integer timestep and round the value to float32 there, as the official
 * `_extract_into_tensor` does (`.float()`).
 *
 *   betas [T]  →  DiffusionSchedule (every array [T], float64)
 */
import { DitMoeError } from '../../core/errors.js';

export type BetaScheduleName = 'linear' | 'squaredcos_cap_v2';

export interface DiffusionSchedule {
  /** T: the number of steps of this (possibly respaced) process. */
  readonly numTimesteps: number;
  /** timestepMap[i]: the timestep of the original process that step i stands for (fed to the model). */
  readonly timestepMap: Int32Array;
  /** The number of steps of the original process (1000 for DiT). */
  readonly originalNumSteps: number;
  readonly betas: Float64Array;
  /** log(betas): the upper end of the learned-range log variance. */
  readonly logBetas: Float64Array;
  /** ᾱ_t = Π_{s ≤ t} (1 − β_s) */
  readonly alphasCumprod: Float64Array;
  /** ᾱ_{t−1} (1 at t = 0) */
  readonly alphasCumprodPrev: Float64Array;
  /** ᾱ_{t+1} (0 at the last step) */
  readonly alphasCumprodNext: Float64Array;
  readonly sqrtAlphasCumprod: Float64Array;
  readonly sqrtOneMinusAlphasCumprod: Float64Array;
  readonly logOneMinusAlphasCumprod: Float64Array;
  /** √(1/ᾱ_t) */
  readonly sqrtRecipAlphasCumprod: Float64Array;
  /** √(1/ᾱ_t − 1) */
  readonly sqrtRecipm1AlphasCumprod: Float64Array;
  /** β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)   (DDPM eq. 7) */
  readonly posteriorVariance: Float64Array;
  /** log β̃_t with β̃_0 (= 0) replaced by β̃_1 */
  readonly posteriorLogVarianceClipped: Float64Array;
  /** μ̃_t = coef1 · x_0 + coef2 · x_t   (DDPM eq. 7): coef1 = β_t √ᾱ_{t−1} / (1 − ᾱ_t) */
  readonly posteriorMeanCoef1: Float64Array;
  /** coef2 = (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t) */
  readonly posteriorMeanCoef2: Float64Array;
}

/**
 * `np.linspace(start, stop, n)` in float64: y_i = i·step + start with step = (stop − start)/(n − 1),
 * and the last element set to `stop` exactly (numpy's formula, so values agree bit for bit).
 */
export function linspace(start: number, stop: number, n: number): Float64Array {
  const y = new Float64Array(n);
  if (n === 1) {
    y[0] = start;
    return y;
  }
  const step = (stop - start) / (n - 1);
  for (let i = 0; i < n; i++) y[i] = i * step + start;
  y[n - 1] = stop;
  return y;
}

/**
 * Linear schedule of Ho et al., extended to any T: β from 1e-4·(1000/T) to 0.02·(1000/T).
 *   T  →  betas [T]
 */
export function linearBetas(numTimesteps: number): Float64Array {
  const scale = 1000 / numTimesteps;
  return linspace(scale * 0.0001, scale * 0.02, numTimesteps);
}

/**
 * Discretises a cumulative ᾱ(t), t ∈ [0, 1]: β_i = min(1 − ᾱ((i+1)/T) / ᾱ(i/T), maxBeta)
 * (Improved DDPM eq. 17 and the clipping after it).
 */
export function betasForAlphaBar(numTimesteps: number, alphaBar: (t: number) => number, maxBeta = 0.999): Float64Array {
  const betas = new Float64Array(numTimesteps);
  for (let i = 0; i < numTimesteps; i++) {
    const t1 = i / numTimesteps;
    const t2 = (i + 1) / numTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** Cosine schedule `squaredcos_cap_v2` (Improved DDPM eq. 17, s = 0.008): ᾱ(t) = cos²((t + s)/(1 + s) · π/2), β ≤ 0.999. */
export function cosineBetas(numTimesteps: number): Float64Array {
  return betasForAlphaBar(numTimesteps, (t) => {
    const c = Math.cos((((t + 0.008) / 1.008) * Math.PI) / 2);
    return c * c;
  });
}

/** `get_named_beta_schedule`: 'linear' or 'squaredcos_cap_v2' (alias 'cosine'). */
export function namedBetas(name: string, numTimesteps: number): Float64Array {
  if (!Number.isInteger(numTimesteps) || numTimesteps < 1) {
    throw new DitMoeError(`diffusion steps must be a positive integer, got ${numTimesteps}`, 'diffusion_steps');
  }
  if (name === 'linear') return linearBetas(numTimesteps);
  if (name === 'squaredcos_cap_v2' || name === 'cosine') return cosineBetas(numTimesteps);
  throw new DitMoeError(`unknown beta schedule '${name}' (known: linear, squaredcos_cap_v2 (alias cosine))`, 'noise_schedule');
}

/**
 * Every derived array of `GaussianDiffusion.__init__`, in float64.
 *   betas [T] (each in (0, 1])  →  DiffusionSchedule
 * `timestepMap` defaults to the identity (an unrespaced process).
 */
export function makeSchedule(betasIn: ArrayLike<number>, timestepMap?: Int32Array, originalNumSteps?: number): DiffusionSchedule {
  const T = betasIn.length;
  if (T < 1) throw new DitMoeError('a schedule needs at least one beta', 'betas');
  const betas = Float64Array.from(betasIn);
  for (let i = 0; i < T; i++) {
    if (!(betas[i] > 0 && betas[i] <= 1)) throw new DitMoeError(`beta ${i} is ${betas[i]}; every beta must be in (0, 1]`, 'betas');
  }
  const map = timestepMap ?? Int32Array.from({ length: T }, (_, i) => i);
  if (map.length !== T) throw new DitMoeError(`timestep map has ${map.length} entries for ${T} betas`, 'timestep_map');

  const arr = () => new Float64Array(T);
  const logBetas = arr();
  const alphasCumprod = arr();
  const alphasCumprodPrev = arr();
  const alphasCumprodNext = arr();
  const sqrtAlphasCumprod = arr();
  const sqrtOneMinusAlphasCumprod = arr();
  const logOneMinusAlphasCumprod = arr();
  const sqrtRecipAlphasCumprod = arr();
  const sqrtRecipm1AlphasCumprod = arr();
  const posteriorVariance = arr();
  const posteriorLogVarianceClipped = arr();
  const posteriorMeanCoef1 = arr();
  const posteriorMeanCoef2 = arr();

  // ᾱ_t = Π (1 − β_s), accumulated left to right like np.cumprod
  let acc = 1;
  for (let i = 0; i < T; i++) {
    acc *= 1.0 - betas[i];
    alphasCumprod[i] = acc;
  }
  for (let i = 0; i < T; i++) {
    const ab = alphasCumprod[i];
    const abPrev = i === 0 ? 1.0 : alphasCumprod[i - 1];
    logBetas[i] = Math.log(betas[i]);
    alphasCumprodPrev[i] = abPrev;
    alphasCumprodNext[i] = i === T - 1 ? 0.0 : alphasCumprod[i + 1];
    // q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)   (DDPM eq. 4)
    sqrtAlphasCumprod[i] = Math.sqrt(ab);
    sqrtOneMinusAlphasCumprod[i] = Math.sqrt(1.0 - ab);
    logOneMinusAlphasCumprod[i] = Math.log(1.0 - ab);
    sqrtRecipAlphasCumprod[i] = Math.sqrt(1.0 / ab);
    sqrtRecipm1AlphasCumprod[i] = Math.sqrt(1.0 / ab - 1);
    // q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)   (DDPM eqs. 6–7)
    posteriorVariance[i] = (betas[i] * (1.0 - abPrev)) / (1.0 - ab);
    posteriorMeanCoef1[i] = (betas[i] * Math.sqrt(abPrev)) / (1.0 - ab);
    posteriorMeanCoef2[i] = ((1.0 - abPrev) * Math.sqrt(1.0 - betas[i])) / (1.0 - ab);
  }
  // log clipped: β̃_0 = 0, so its log is replaced by log β̃_1 (empty for T = 1, as the official code)
  if (T > 1) for (let i = 0; i < T; i++) posteriorLogVarianceClipped[i] = Math.log(posteriorVariance[i === 0 ? 1 : i]);
  else posteriorLogVarianceClipped[0] = NaN;

  return {
    numTimesteps: T,
    timestepMap: map,
    originalNumSteps: originalNumSteps ?? T,
    betas,
    logBetas,
    alphasCumprod,
    alphasCumprodPrev,
    alphasCumprodNext,
    sqrtAlphasCumprod,
    sqrtOneMinusAlphasCumprod,
    logOneMinusAlphasCumprod,
    sqrtRecipAlphasCumprod,
    sqrtRecipm1AlphasCumprod,
    posteriorVariance,
    posteriorLogVarianceClipped,
    posteriorMeanCoef1,
    posteriorMeanCoef2,
  };
}
