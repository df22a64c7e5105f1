/**
 * Gaussian diffusion with an epsilon-predicting model, as the official `gaussian_diffusion.py`:
 * the forward process q(x_t | x_0), the model's reverse step p(x_{t−1} | x_t) with learned-range,
 * fixed-large or fixed-small variance, and one DDPM (ancestral) or DDIM step.
 *
 * Tensors are [N, C, H, W] Float32Arrays, passed with their dimensions last (N, C, HW = H·W);
 * `t` holds one step index of the (respaced) schedule per sample. Model outputs are
 * [N, outC, H, W], outC = 2C with learned sigma (eps, then the variance interpolation v).
 *
 * Precision: the schedule is float64, but the official `_extract_into_tensor` rounds each value
 * to float32 (`.float()`) and every later operation is a float32 PyTorch op. We do the same:
 * `f = Math.fround` after each operation, so a 10-step loop follows PyTorch's rounding.
 */
import { DitMoeError } from '../../core/errors.js';
import type { DiffusionSchedule } from './schedule.js';

const f = Math.fround;

export type VarType = 'learned_range' | 'fixed_large' | 'fixed_small';

export interface PMeanVarianceOptions {
  /** How the reverse-step variance is chosen (DiT: 'learned_range'). */
  varType: VarType;
  /** Clip the x_0 prediction to [−1, 1] (the official samplers for DiT pass false). */
  clipDenoised?: boolean;
}

export interface PMeanVariance {
  mean: Float32Array; // [N, C, HW]
  variance: Float32Array; // [N, C, HW]
  logVariance: Float32Array; // [N, C, HW]
  predXStart: Float32Array; // [N, C, HW]
}

/** `_extract_into_tensor`: the float64 schedule value at step t, rounded to float32. */
export function extract(arr: Float64Array, t: number): number {
  return f(arr[t]);
}

function checkSteps(sched: DiffusionSchedule, t: ArrayLike<number>, N: number, where: string): void {
  if (t.length !== N) throw new DitMoeError(`${t.length} timesteps for a batch of ${N}`, where);
  for (let n = 0; n < N; n++) {
    const s = t[n];
    if (!Number.isInteger(s) || s < 0 || s >= sched.numTimesteps) throw new DitMoeError(`timestep ${s} out of range [0, ${sched.numTimesteps - 1}]`, where);
  }
}

/**
 * q_sample (DDPM eq. 4): x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε
 *   x0 [N, D], noise [N, D], t [N]  →  out [N, D]   (D = C·H·W)
 */
export function qSample(out: Float32Array, x0: Float32Array, noise: Float32Array, t: ArrayLike<number>, sched: DiffusionSchedule, N: number, D: number): void {
  checkSteps(sched, t, N, 'q_sample');
  for (let n = 0; n < N; n++) {
    const a = extract(sched.sqrtAlphasCumprod, t[n]);
    const b = extract(sched.sqrtOneMinusAlphasCumprod, t[n]);
    for (let i = n * D; i < (n + 1) * D; i++) out[i] = f(f(a * x0[i]) + f(b * noise[i]));
  }
}

/**
 * _predict_xstart_from_eps (DDPM eq. 4 solved for x_0): x̂_0 = √(1/ᾱ_t) · x_t − √(1/ᾱ_t − 1) · ε
 *   xT [N, D], eps [N, D], t [N]  →  out [N, D]
 */
export function predXStartFromEps(out: Float32Array, xT: Float32Array, eps: Float32Array, t: ArrayLike<number>, sched: DiffusionSchedule, N: number, D: number): void {
  for (let n = 0; n < N; n++) {
    const a = extract(sched.sqrtRecipAlphasCumprod, t[n]);
    const b = extract(sched.sqrtRecipm1AlphasCumprod, t[n]);
    for (let i = n * D; i < (n + 1) * D; i++) out[i] = f(f(a * xT[i]) - f(b * eps[i]));
  }
}

/**
 * _predict_eps_from_xstart (the inverse): ε = (√(1/ᾱ_t) · x_t − x̂_0) / √(1/ᾱ_t − 1)
 *   xT [N, D], predX0 [N, D], t [N]  →  out [N, D]
 */
export function predEpsFromXStart(out: Float32Array, xT: Float32Array, predX0: Float32Array, t: ArrayLike<number>, sched: DiffusionSchedule, N: number, D: number): void {
  for (let n = 0; n < N; n++) {
    const a = extract(sched.sqrtRecipAlphasCumprod, t[n]);
    const b = extract(sched.sqrtRecipm1AlphasCumprod, t[n]);
    for (let i = n * D; i < (n + 1) * D; i++) out[i] = f(f(f(a * xT[i]) - predX0[i]) / b);
  }
}

/**
 * q_posterior_mean_variance (DDPM eq. 7): μ̃_t = coef1_t · x_0 + coef2_t · x_t (the mean only;
 * the variance β̃_t and its clipped log are read from the schedule).
 *   x0 [N, D], xT [N, D], t [N]  →  out [N, D]
 */
export function qPosteriorMean(out: Float32Array, x0: Float32Array, xT: Float32Array, t: ArrayLike<number>, sched: DiffusionSchedule, N: number, D: number): void {
  for (let n = 0; n < N; n++) {
    const c1 = extract(sched.posteriorMeanCoef1, t[n]);
    const c2 = extract(sched.posteriorMeanCoef2, t[n]);
    for (let i = n * D; i < (n + 1) * D; i++) out[i] = f(f(c1 * x0[i]) + f(c2 * xT[i]));
  }
}

/**
 * The fixed variances at step t: 'fixed_large' uses β_t (and β̃_1 at t = 0, "to get a better
 * decoder log likelihood"), 'fixed_small' the posterior β̃_t with the clipped log.
 * Returns [variance, log variance], both rounded to float32.
 */
export function fixedVariance(sched: DiffusionSchedule, varType: 'fixed_large' | 'fixed_small', t: number): [number, number] {
  if (varType === 'fixed_large') {
    const v = t === 0 ? sched.posteriorVariance[1] : sched.betas[t];
    return [f(v), f(Math.log(v))];
  }
  return [f(sched.posteriorVariance[t]), f(sched.posteriorLogVarianceClipped[t])];
}

/**
 * p_mean_variance for an epsilon-predicting model (Improved DDPM eqs. 13, 15):
 *   x̂_0 = √(1/ᾱ_t) x_t − √(1/ᾱ_t − 1) ε_θ            (optionally clipped to [−1, 1])
 *   μ_θ = coef1_t · x̂_0 + coef2_t · x_t
 *   learned range: frac = (v + 1)/2,  log Σ_θ = frac · log β_t + (1 − frac) · log β̃_t (clipped)
 *   x [N, C, HW], modelOut [N, outC, HW], t [N]  →  mean, variance, logVariance, predXStart [N, C, HW]
 * With a fixed variance and outC > C (a learned-sigma model), the extra channels are ignored.
 */
export function pMeanVariance(sched: DiffusionSchedule, x: Float32Array, modelOut: Float32Array, t: ArrayLike<number>, N: number, C: number, HW: number, outC: number, opts: PMeanVarianceOptions): PMeanVariance {
  checkSteps(sched, t, N, 'p_mean_variance');
  if (sched.numTimesteps < 2) throw new DitMoeError('a 1-step process has no posterior variance; sample with at least 2 steps', 'respacing');
  if (modelOut.length !== N * outC * HW || x.length !== N * C * HW) throw new DitMoeError(`model output has ${modelOut.length} values, expected [${N}, ${outC}, ${HW}] for x of [${N}, ${C}, ${HW}]`, 'p_mean_variance');
  if (opts.varType === 'learned_range' && outC !== 2 * C) {
    throw new DitMoeError(`learned-range variance needs a model with learned sigma (${2 * C} output channels), this one has ${outC}`, 'p_mean_variance');
  }
  if (outC < C) throw new DitMoeError(`model output has ${outC} channels, fewer than the ${C} of x`, 'p_mean_variance');
  const D = C * HW;
  // th.split(model_output, C, dim=1): eps = channels [0, C), v = channels [C, 2C)
  const eps = new Float32Array(N * D);
  for (let n = 0; n < N; n++) eps.set(modelOut.subarray(n * outC * HW, n * outC * HW + D), n * D);

  const variance = new Float32Array(N * D);
  const logVariance = new Float32Array(N * D);
  for (let n = 0; n < N; n++) {
    if (opts.varType === 'learned_range') {
      const minLog = extract(sched.posteriorLogVarianceClipped, t[n]);
      const maxLog = extract(sched.logBetas, t[n]);
      const vo = n * outC * HW + D;
      for (let i = 0; i < D; i++) {
        const frac = f(f(modelOut[vo + i] + 1) / 2);
        const lv = f(f(frac * maxLog) + f(f(1 - frac) * minLog));
        logVariance[n * D + i] = lv;
        variance[n * D + i] = f(Math.exp(lv));
      }
    } else {
      const [v, lv] = fixedVariance(sched, opts.varType, t[n]);
      variance.fill(v, n * D, (n + 1) * D);
      logVariance.fill(lv, n * D, (n + 1) * D);
    }
  }

  const predXStart = new Float32Array(N * D);
  predXStartFromEps(predXStart, x, eps, t, sched, N, D);
  if (opts.clipDenoised) for (let i = 0; i < predXStart.length; i++) predXStart[i] = Math.min(1, Math.max(-1, predXStart[i]));
  const mean = new Float32Array(N * D);
  qPosteriorMean(mean, predXStart, x, t, sched, N, D);
  return { mean, variance, logVariance, predXStart };
}

export interface StepResult {
  sample: Float32Array; // x_{t−1} [N, C, HW]
  predXStart: Float32Array; // x̂_0 [N, C, HW]
}

/**
 * p_sample, one ancestral DDPM step (DDPM Algorithm 2): x_{t−1} = μ_θ + [t ≠ 0] · exp(½ log Σ_θ) · z
 *   x [N, C, HW], modelOut [N, outC, HW], t [N], noise z [N, C, HW] (not read where t = 0)  →  StepResult
 */
export function ddpmStep(sched: DiffusionSchedule, x: Float32Array, modelOut: Float32Array, t: ArrayLike<number>, noise: Float32Array, N: number, C: number, HW: number, outC: number, opts: PMeanVarianceOptions): StepResult {
  const out = pMeanVariance(sched, x, modelOut, t, N, C, HW, outC, opts);
  const D = C * HW;
  if (noise.length < N * D && Array.from({ length: N }, (_, n) => t[n]).some((s) => s !== 0)) throw new DitMoeError(`step noise has ${noise.length} values, needs ${N * D}`, 'ddpm noise');
  const sample = new Float32Array(N * D);
  for (let n = 0; n < N; n++) {
    if (t[n] === 0) {
      // no noise when t == 0 (the official code multiplies it by a zero mask: the same for finite noise)
      sample.set(out.mean.subarray(n * D, (n + 1) * D), n * D);
      continue;
    }
    for (let i = n * D; i < (n + 1) * D; i++) {
      sample[i] = f(out.mean[i] + f(f(Math.exp(f(0.5 * out.logVariance[i]))) * noise[i]));
    }
  }
  return { sample, predXStart: out.predXStart };
}

/**
 * ddim_sample, one DDIM step (Song et al. 2021, eq. 12), the model's ε re-derived from x̂_0:
 *   σ = η · √((1 − ᾱ_{t−1}) / (1 − ᾱ_t)) · √(1 − ᾱ_t / ᾱ_{t−1})
 *   x_{t−1} = x̂_0 √ᾱ_{t−1} + √(1 − ᾱ_{t−1} − σ²) · ε + [t ≠ 0] · σ · z
 *   x [N, C, HW], modelOut [N, outC, HW], t [N], noise z [N, C, HW] or null (only read when η ≠ 0)
 */
export function ddimStep(sched: DiffusionSchedule, x: Float32Array, modelOut: Float32Array, t: ArrayLike<number>, noise: Float32Array | null, eta: number, N: number, C: number, HW: number, outC: number, opts: PMeanVarianceOptions): StepResult {
  if (!Number.isFinite(eta) || eta < 0) throw new DitMoeError(`eta must be a finite number ≥ 0, got ${eta}`, 'eta');
  const out = pMeanVariance(sched, x, modelOut, t, N, C, HW, outC, opts);
  const D = C * HW;
  const needsNoise = eta !== 0 && Array.from({ length: N }, (_, n) => t[n]).some((s) => s !== 0);
  if (needsNoise && (noise === null || noise.length < N * D)) throw new DitMoeError(`DDIM with eta ${eta} needs step noise of ${N * D} values`, 'ddim noise');
  const eps = new Float32Array(N * D);
  predEpsFromXStart(eps, x, out.predXStart, t, sched, N, D);
  const sample = new Float32Array(N * D);
  const etaF = f(eta);
  for (let n = 0; n < N; n++) {
    const ab = extract(sched.alphasCumprod, t[n]);
    const abPrev = extract(sched.alphasCumprodPrev, t[n]);
    const sigma = f(f(etaF * f(Math.sqrt(f(f(1 - abPrev) / f(1 - ab))))) * f(Math.sqrt(f(1 - f(ab / abPrev)))));
    const cX0 = f(Math.sqrt(abPrev));
    const cEps = f(Math.sqrt(f(f(1 - abPrev) - f(sigma * sigma))));
    const noiseScale = f((t[n] !== 0 ? 1 : 0) * sigma); // no noise when t == 0
    for (let i = n * D; i < (n + 1) * D; i++) {
      const meanPred = f(f(out.predXStart[i] * cX0) + f(cEps * eps[i]));
      sample[i] = noiseScale === 0 ? meanPred : f(meanPred + f(noiseScale * noise![i]));
    }
  }
  return { sample, predXStart: out.predXStart };
}
