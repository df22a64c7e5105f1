/**
 * The DDPM training loss of DiT (Improved DDPM §3.1, "hybrid" objective L_simple + L_vlb), as the
 * official `GaussianDiffusion.training_losses` with loss type MSE and learned-range variance:
 *   mse_b = mean_i (ε_i − ε_θ,i)²
 *   vb_b  = mean_i KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)) / ln 2            (t > 0)
 *         = mean_i −log p_θ(x_0 | x_1) / ln 2   (discretized Gaussian decoder)    (t = 0)
 *   loss  = mean_b (mse_b + vb_b)
 * The VB term sees the predicted mean detached ("frozen_out"): its gradient flows only into
 * the variance channels v, the MSE's only into the eps channels.
 *
 *   ddpmLossForward:  x0, xT, noise [B, C, HW], t [B], modelOut [B, 2C, HW]  →  mse [B], vb [B], loss
 *   ddpmLossBackward: same inputs  →  dModelOut [B, 2C, HW] = ∂loss/∂modelOut
 *
 * Precision: 'float32' (default) rounds after every operation like the official float32 PyTorch
 * code (needed for the t = 0 decoder term, whose CDF differences saturate in float32);
 * 'float64' evaluates the same formulas unrounded with float64 schedule values (used to check
 * the backward pass against finite differences). The backward is always float64 arithmetic.
 */
import { DitMoeError } from '../../core/errors.js';
import type { DiffusionSchedule } from './schedule.js';

export type Precision = 'float32' | 'float64';

const LN2 = Math.log(2.0);
const SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);
const id = (x: number) => x;

/** The rounding of one precision: float32 rounds every intermediate, float64 none. */
function rounder(p: Precision): (x: number) => number {
  return p === 'float32' ? Math.fround : id;
}

/**
 * normal_kl: KL(N(μ1, e^{lv1}) ‖ N(μ2, e^{lv2})) = ½ (−1 + lv2 − lv1 + e^{lv1 − lv2} + (μ1 − μ2)² e^{−lv2})
 * (scalar; `r` rounds each operation as PyTorch evaluates it left to right).
 */
export function normalKl(mean1: number, logvar1: number, mean2: number, logvar2: number, r: (x: number) => number = id): number {
  const d = r(mean1 - mean2);
  const a = r(r(r(-1.0 + logvar2) - logvar1) + r(Math.exp(r(logvar1 - logvar2))));
  return r(0.5 * r(a + r(r(d * d) * r(Math.exp(-logvar2)))));
}

/** approx_standard_normal_cdf: Φ(x) ≈ ½ (1 + tanh(√(2/π) (x + 0.044715 x³))) */
export function approxStandardNormalCdf(x: number, r: (x: number) => number = id): number {
  const x3 = r(r(x * x) * x);
  return r(0.5 * r(1.0 + r(Math.tanh(r(r(SQRT_2_OVER_PI) * r(x + r(r(0.044715) * x3)))))));
}

/** d/dx of approxStandardNormalCdf: ½ (1 − tanh²(u)) · √(2/π) (1 + 3·0.044715 x²) */
function approxStandardNormalCdfGrad(x: number): number {
  const th = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
  return 0.5 * (1 - th * th) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
}

/**
 * discretized_gaussian_log_likelihood for one value x ∈ [−1, 1] (uint8 data rescaled):
 * the mass of N(mean, e^{2 logScale}) on x's bin of width 2/255, the edge bins (x < −0.999,
 * x > 0.999) extended to ±∞; probabilities clamped at 1e-12 before the log. In nats.
 */
export function discretizedGaussianLogLikelihood(x: number, mean: number, logScale: number, r: (x: number) => number = id): number {
  const centered = r(x - mean);
  const invStdv = r(Math.exp(-logScale));
  const plusIn = r(invStdv * r(centered + r(1.0 / 255.0)));
  const cdfPlus = approxStandardNormalCdf(plusIn, r);
  const minIn = r(invStdv * r(centered - r(1.0 / 255.0)));
  const cdfMin = approxStandardNormalCdf(minIn, r);
  const tiny = r(1e-12);
  if (x < r(-0.999)) return r(Math.log(Math.max(cdfPlus, tiny)));
  if (x > r(0.999)) return r(Math.log(Math.max(r(1.0 - cdfMin), tiny)));
  return r(Math.log(Math.max(r(cdfPlus - cdfMin), tiny)));
}

/** ∂/∂logScale of discretizedGaussianLogLikelihood (mean held fixed); zero where a clamp is active. */
function discretizedGaussianLogLikelihoodGradLogScale(x: number, mean: number, logScale: number): number {
  const centered = x - mean;
  const invStdv = Math.exp(-logScale);
  const plusIn = invStdv * (centered + 1.0 / 255.0);
  const minIn = invStdv * (centered - 1.0 / 255.0);
  // ∂plusIn/∂logScale = −plusIn, ∂minIn/∂logScale = −minIn
  const dPlus = -approxStandardNormalCdfGrad(plusIn) * plusIn;
  const dMin = -approxStandardNormalCdfGrad(minIn) * minIn;
  const cdfPlus = approxStandardNormalCdf(plusIn);
  const cdfMin = approxStandardNormalCdf(minIn);
  if (x < -0.999) return cdfPlus > 1e-12 ? dPlus / cdfPlus : 0;
  if (x > 0.999) return 1 - cdfMin > 1e-12 ? -dMin / (1 - cdfMin) : 0;
  const delta = cdfPlus - cdfMin;
  return delta > 1e-12 ? (dPlus - dMin) / delta : 0;
}

export interface DdpmLossTerms {
  mse: Float64Array; // [B]
  vb: Float64Array; // [B], bits
  /** mean over the batch of mse + vb */
  loss: number;
}

function checkLossInputs(sched: DiffusionSchedule, x0: Float32Array, xT: Float32Array, noise: Float32Array, t: ArrayLike<number>, modelOut: Float32Array, B: number, C: number, HW: number): void {
  const D = B * C * HW;
  if (x0.length !== D || xT.length !== D || noise.length !== D) throw new DitMoeError(`x0, x_t and noise must each have ${D} values ([${B}, ${C}, ${HW}])`, 'ddpm loss');
  if (modelOut.length !== 2 * D) throw new DitMoeError(`model output has ${modelOut.length} values; the DDPM loss with learned variance needs [${B}, ${2 * C}, ${HW}]`, 'ddpm loss');
  if (t.length !== B) throw new DitMoeError(`${t.length} timesteps for a batch of ${B}`, 'ddpm loss');
  if (sched.numTimesteps < 2) throw new DitMoeError('the DDPM loss needs at least 2 diffusion steps', 'ddpm loss');
  for (let b = 0; b < B; b++) {
    if (!Number.isInteger(t[b]) || t[b] < 0 || t[b] >= sched.numTimesteps) throw new DitMoeError(`timestep ${t[b]} out of range [0, ${sched.numTimesteps - 1}]`, 'ddpm loss');
  }
}

/** The schedule values at step t, rounded like `_extract_into_tensor` in float32 mode. */
function coefs(sched: DiffusionSchedule, t: number, r: (x: number) => number) {
  return {
    sqrtRecip: r(sched.sqrtRecipAlphasCumprod[t]),
    sqrtRecipm1: r(sched.sqrtRecipm1AlphasCumprod[t]),
    coef1: r(sched.posteriorMeanCoef1[t]),
    coef2: r(sched.posteriorMeanCoef2[t]),
    minLog: r(sched.posteriorLogVarianceClipped[t]),
    maxLog: r(sched.logBetas[t]),
  };
}

/**
 * Per element of sample b: the true posterior (mean1, logvar1), the model's (mean2 from the
 * detached eps, logvar2 from v). Shared by forward and backward.
 */
function reverseStep(c: ReturnType<typeof coefs>, x0: number, xT: number, eps: number, v: number, r: (x: number) => number) {
  const mean1 = r(r(c.coef1 * x0) + r(c.coef2 * xT)); // q posterior mean (eq. 7)
  const predX0 = r(r(c.sqrtRecip * xT) - r(c.sqrtRecipm1 * eps));
  const mean2 = r(r(c.coef1 * predX0) + r(c.coef2 * xT));
  const frac = r(r(v + 1) / 2);
  const logvar2 = r(r(frac * c.maxLog) + r(r(1 - frac) * c.minLog));
  return { mean1, logvar1: c.minLog, mean2, logvar2 };
}

/**
 * The loss terms of `training_losses` (MSE loss type, epsilon target, learned-range variance).
 *   x0, xT (= q_sample(x0, t, noise)), noise [B, C, HW], t [B], modelOut [B, 2C, HW]  →  DdpmLossTerms
 */
export function ddpmLossForward(sched: DiffusionSchedule, x0: Float32Array, xT: Float32Array, noise: Float32Array, t: ArrayLike<number>, modelOut: Float32Array, B: number, C: number, HW: number, precision: Precision = 'float32'): DdpmLossTerms {
  checkLossInputs(sched, x0, xT, noise, t, modelOut, B, C, HW);
  const r = rounder(precision);
  const D = C * HW;
  const mse = new Float64Array(B);
  const vb = new Float64Array(B);
  const ln2 = r(LN2);
  let lossSum = 0;
  for (let b = 0; b < B; b++) {
    const c = coefs(sched, t[b], r);
    let sq = 0;
    let terms = 0;
    for (let i = 0; i < D; i++) {
      const k = b * D + i;
      const eps = modelOut[b * 2 * D + i];
      const v = modelOut[b * 2 * D + D + i];
      const d = r(noise[k] - eps);
      sq += r(d * d);
      const p = reverseStep(c, x0[k], xT[k], eps, v, r);
      if (t[b] === 0) {
        // decoder NLL: −log p(x_0 | x_1) with log scale ½ log Σ_θ
        terms += -discretizedGaussianLogLikelihood(x0[k], p.mean2, r(0.5 * p.logvar2), r);
      } else {
        terms += normalKl(p.mean1, p.logvar1, p.mean2, p.logvar2, r);
      }
    }
    mse[b] = r(sq / D);
    vb[b] = r(r(terms / D) / ln2);
    lossSum += r(mse[b] + vb[b]);
  }
  return { mse, vb, loss: r(lossSum / B) };
}

/**
 * Backward of ddpmLossForward: dModelOut = ∂ mean_b(mse_b + vb_b) / ∂ modelOut (overwrites).
 *   eps channels:  −2 (ε − ε_θ) / (D·B)                                   (inverts mse)
 *   v channels:    ∂vb/∂logvar2 · ½ (log β_t − log β̃_t) / (D·B·ln 2), with
 *                  ∂KL/∂lv2 = ½ (1 − e^{lv1 − lv2} − (μ1 − μ2)² e^{−lv2})            (t > 0)
 *                  ∂(−log p)/∂lv2 = −½ ∂ log p/∂logScale                               (t = 0)
 * The VB term's mean is detached, so it sends nothing into the eps channels.
 */
export function ddpmLossBackward(dModelOut: Float32Array | Float64Array, sched: DiffusionSchedule, x0: Float32Array, xT: Float32Array, noise: Float32Array, t: ArrayLike<number>, modelOut: Float32Array, B: number, C: number, HW: number): void {
  checkLossInputs(sched, x0, xT, noise, t, modelOut, B, C, HW);
  if (dModelOut.length !== modelOut.length) throw new DitMoeError(`gradient buffer has ${dModelOut.length} values, model output ${modelOut.length}`, 'ddpm loss backward');
  const D = C * HW;
  const scale = 1 / (D * B);
  for (let b = 0; b < B; b++) {
    const c = coefs(sched, t[b], id);
    const dLv2dV = 0.5 * (c.maxLog - c.minLog); // logvar2 = frac·max + (1 − frac)·min, frac = (v + 1)/2
    for (let i = 0; i < D; i++) {
      const k = b * D + i;
      const eps = modelOut[b * 2 * D + i];
      const v = modelOut[b * 2 * D + D + i];
      dModelOut[b * 2 * D + i] = -2 * (noise[k] - eps) * scale;
      const p = reverseStep(c, x0[k], xT[k], eps, v, id);
      let dLv2: number;
      if (t[b] === 0) {
        dLv2 = -0.5 * discretizedGaussianLogLikelihoodGradLogScale(x0[k], p.mean2, 0.5 * p.logvar2);
      } else {
        const dm = p.mean1 - p.mean2;
        dLv2 = 0.5 * (1 - Math.exp(p.logvar1 - p.logvar2) - dm * dm * Math.exp(-p.logvar2));
      }
      dModelOut[b * 2 * D + D + i] = (dLv2 * dLv2dV * scale) / LN2;
    }
  }
}
