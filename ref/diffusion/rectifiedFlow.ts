/**
 * Rectified flow (Liu et al. 2022; the logit-normal t of Esser et al. 2024, "SD3"), as the
 * official `diffusion/rectified_flow.py` of DiT-MoE. The straight path from data x_0 (t = 0)
 * to noise z_1 (t = 1):
 *   x_t = (1 − t) · x_0 + t · z_1,   velocity dx_t/dt = z_1 − x_0
 * The model v_θ(x_t, t, y) is fed t itself in (0, 1) (not t·1000); with learned sigma only
 * its first C output channels are the velocity.
 *
 *   rfSampleT:         B, rng  →  t [B]         (sigmoid(N(0,1)), or uniform)
 *   rfInterpolate:     x0, z1 [B, D], t [B]  →  x_t [B, D]
 *   rfLossForward:     modelOut [B, outC, HW], x0, z1 [B, C, HW]  →  per-sample mse [B], loss
 *   rfLossBackward:    same  →  dModelOut [B, outC, HW]
 *   rfEulerStep:       z, v [B, D], dt  →  z − dt · v      (one step from t to t − dt)
 *   rfPredX0:          z, v, t  →  z − t · v               (the x-prediction of `sample_with_xps`)
 * Float32 rounding after each operation, as the official float32 code.
 */
import { DitMoeError } from '../../core/errors.js';
import type { Rng } from './rng.js';
import type { Precision } from './losses.js';

const f = Math.fround;

export type RfTimeSampling = 'logit_normal' | 'uniform';

/** t = sigmoid(n), n ~ N(0, 1) (the official `ln=True`), or t ~ U(0, 1) (`ln=False`).  B  →  t [B] */
export function rfSampleT(rng: Rng, B: number, mode: RfTimeSampling = 'logit_normal'): Float32Array {
  const t = new Float32Array(B);
  for (let b = 0; b < B; b++) t[b] = mode === 'uniform' ? rng.uniform() : 1 / (1 + Math.exp(-f(rng.normal())));
  return t;
}

/** x_t = (1 − t) · x_0 + t · z_1, t broadcast per sample.   x0 [B, D], z1 [B, D], t [B]  →  out [B, D] */
export function rfInterpolate(out: Float32Array, x0: Float32Array, z1: Float32Array, t: ArrayLike<number>, B: number, D: number): void {
  if (x0.length !== B * D || z1.length !== B * D || t.length !== B) throw new DitMoeError(`x0 and z1 must have [${B}, ${D}] values and t ${B}`, 'rectified flow');
  for (let b = 0; b < B; b++) {
    const tb = f(t[b]);
    const a = f(1 - tb);
    for (let i = b * D; i < (b + 1) * D; i++) out[i] = f(f(a * x0[i]) + f(tb * z1[i]));
  }
}

export interface RfLossTerms {
  mse: Float64Array; // [B]: mean_i (z1 − x0 − v)²
  loss: number; // mean over the batch
}

function checkRf(modelOut: Float32Array, x0: Float32Array, z1: Float32Array, B: number, C: number, HW: number, outC: number): void {
  if (x0.length !== B * C * HW || z1.length !== B * C * HW) throw new DitMoeError(`x0 and z1 must have [${B}, ${C}, ${HW}] values`, 'rectified flow loss');
  if (outC < C || modelOut.length !== B * outC * HW) throw new DitMoeError(`model output has ${modelOut.length} values, expected [${B}, ${outC} ≥ ${C}, ${HW}]`, 'rectified flow loss');
}

/**
 * loss = mean_b mean_i ((z_1 − x_0) − v_θ)², v_θ the first C output channels.
 *   modelOut [B, outC, HW], x0 [B, C, HW], z1 [B, C, HW]  →  RfLossTerms
 */
export function rfLossForward(modelOut: Float32Array, x0: Float32Array, z1: Float32Array, B: number, C: number, HW: number, outC: number, precision: Precision = 'float32'): RfLossTerms {
  checkRf(modelOut, x0, z1, B, C, HW, outC);
  const r = precision === 'float32' ? f : (x: number) => x;
  const D = C * HW;
  const mse = new Float64Array(B);
  let sum = 0;
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let i = 0; i < D; i++) {
      const d = r(r(z1[b * D + i] - x0[b * D + i]) - modelOut[b * outC * HW + i]);
      s += r(d * d);
    }
    mse[b] = r(s / D);
    sum += mse[b];
  }
  return { mse, loss: r(sum / B) };
}

/**
 * Backward of rfLossForward (overwrites): dModelOut[b, i] = −2 ((z1 − x0) − v)_i / (D·B) on the
 * first C channels, 0 on the others (the official code drops them with `chunk`).
 */
export function rfLossBackward(dModelOut: Float32Array | Float64Array, modelOut: Float32Array, x0: Float32Array, z1: Float32Array, B: number, C: number, HW: number, outC: number): void {
  checkRf(modelOut, x0, z1, B, C, HW, outC);
  const D = C * HW;
  const scale = 1 / (D * B);
  dModelOut.fill(0);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < D; i++) {
      dModelOut[b * outC * HW + i] = -2 * (z1[b * D + i] - x0[b * D + i] - modelOut[b * outC * HW + i]) * scale;
    }
  }
}

/** One Euler step of dx/dt = v from t to t − dt:  z [N, D], v [N, D]  →  out = z − dt · v */
export function rfEulerStep(out: Float32Array, z: Float32Array, v: Float32Array, dt: number): void {
  const d = f(dt);
  for (let i = 0; i < z.length; i++) out[i] = f(z[i] - f(d * v[i]));
}

/**
 * The x-prediction of `sample_with_xps`: x̂_0 = z − t·v, with t = i·dt at step i (i from
 * `steps` down to 1), the point the straight line through z with velocity v reaches at t = 0.
 *   z [N, D], v [N, D]  →  out [N, D]
 */
export function rfPredX0(out: Float32Array, z: Float32Array, v: Float32Array, i: number, dt: number): void {
  const s = f(i * f(dt));
  for (let k = 0; k < z.length; k++) out[k] = f(z[k] - f(s * v[k]));
}
