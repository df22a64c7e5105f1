/**
 * Sampling loops: DDPM (ancestral), DDIM and rectified-flow Euler, with classifier-free guidance
 * (Ho & Salimans 2022) in the official DiT form.
 *
 * The model is any function (x [N, C, H, W], shape, t [N], y [N]) → output [N, outC, H, W];
 * for the diffusion samplers t is the original timestep (`timestepMap` of the respaced
 * schedule, as the official `_WrappedModel`), for rectified flow t ∈ (0, 1].
 *
 * Guidance, official `forward_with_cfg`: the model runs on the doubled batch [x; x] with labels
 * [y; null]; on the first `channels` output channels out = u + s·(c − u) (c conditional,
 * u unconditional), the other channels are the conditional pass's own (3 guided channels
 * reproduce the paper's samples; 'all' = the C eps channels, the standard form). The official
 * loop carries the doubled batch through the sampler, but `forward_with_cfg` rebuilds the model
 * input from the first half at every step, so the second half never reaches the result: we carry
 * only the first half (identical values) and read the first N·C·H·W values of [2N, ...] step noise.
 * Rectified flow guides with two separate passes (conditional, then null), as `RectifiedFlow.sample`.
 */
import { DitMoeError } from '../../core/errors.js';
import type { DiffusionSchedule } from './schedule.js';
import type { Rng } from './rng.js';
import { ddimStep, ddpmStep, type VarType, type StepResult } from './gaussian.js';
import { rfEulerStep, rfPredX0 } from './rectifiedFlow.js';

const f = Math.fround;

/** (x [N, C, H, W], shape [N, C, H, W], t [N], y [N])  →  model output [N, outC, H, W] */
export type DiffusionModelFn = (x: Float32Array, shape: number[], t: Float32Array, y: Int32Array) => Float32Array;

export interface Guidance {
  /** s: out = u + s·(c − u); 1 is plain conditional sampling. */
  scale: number;
  /** The label of the unconditional pass (num_classes for DiT). */
  nullClass: number;
  /** How many leading output channels are guided: 3 in the official code, 'all' = the C data channels. */
  channels: number | 'all';
}

/** Step noise: an RNG, a function of the step index (0 = first, highest t), or one array per step. */
export type StepNoise = Rng | ((i: number) => Float32Array) | readonly Float32Array[];

/** Called after step i of n with the new x and the current x_0 prediction (first half only under guidance). */
export type OnStep = (i: number, n: number, x: Float32Array, predX0: Float32Array) => void;

export interface SampleOptions {
  model: DiffusionModelFn;
  /** Start noise x_T (or z_1 for rectified flow), [N, C, H, W]. */
  z: Float32Array;
  shape: readonly [number, number, number, number] | readonly number[];
  /** Class labels [N]. */
  y: Int32Array;
  guidance?: Guidance | null;
  onStep?: OnStep;
}

export interface DiffusionSampleOptions extends SampleOptions {
  schedule: DiffusionSchedule;
  /** Default 'learned_range' (DiT with learn_sigma). */
  varType?: VarType;
  /** Clip x̂_0 to [−1, 1]; the official DiT sampling passes false (default). */
  clipDenoised?: boolean;
}

export function dims(o: SampleOptions): { N: number; C: number; H: number; W: number; HW: number; D: number } {
  const s = o.shape;
  if (s.length !== 4 || !s.every((d) => Number.isInteger(d) && d > 0)) throw new DitMoeError(`sample shape must be [N, C, H, W] of positive integers, got [${s.join(', ')}]`, 'sample');
  const [N, C, H, W] = s;
  if (o.z.length !== N * C * H * W) throw new DitMoeError(`start noise has ${o.z.length} values, shape [${s.join(', ')}] needs ${N * C * H * W}`, 'sample');
  if (o.y.length !== N) throw new DitMoeError(`${o.y.length} labels for ${N} samples`, 'sample');
  if (o.guidance) {
    const g = o.guidance;
    if (!Number.isFinite(g.scale)) throw new DitMoeError(`guidance scale must be finite, got ${g.scale}`, '--cfg');
    if (!Number.isInteger(g.nullClass) || g.nullClass < 0) throw new DitMoeError(`null class must be a non-negative integer, got ${g.nullClass}`, 'guidance');
    if (g.channels !== 'all' && (!Number.isInteger(g.channels) || g.channels < 0)) throw new DitMoeError(`guided channels must be 'all' or a non-negative integer, got ${g.channels}`, 'guidance');
  }
  return { N, C, H, W, HW: H * W, D: C * H * W };
}

/**
 * guide: out[n, ch] = u + s·(c − u) for ch < G, else c (the conditional pass's own channels).
 *   cond [N, outC, HW], uncond [N, outC', HW] (≥ G channels)  →  out [N, outC, HW]
 */
export function applyGuidance(out: Float32Array, cond: Float32Array, uncond: Float32Array, scale: number, G: number, N: number, outC: number, uncondC: number, HW: number): void {
  const s = f(scale);
  for (let n = 0; n < N; n++) {
    for (let ch = 0; ch < outC; ch++) {
      const o = (n * outC + ch) * HW;
      const ou = (n * uncondC + ch) * HW;
      if (ch < G) for (let i = 0; i < HW; i++) out[o + i] = f(uncond[ou + i] + f(s * f(cond[o + i] - uncond[ou + i])));
      else for (let i = 0; i < HW; i++) out[o + i] = cond[o + i];
    }
  }
}

function guidedChannels(g: Guidance, C: number, outC: number): number {
  const G = g.channels === 'all' ? C : g.channels;
  if (G > outC) throw new DitMoeError(`cannot guide ${G} channels of a model output with ${outC}`, 'guidance');
  return G;
}

/** Number of output channels of a model call, checked against the batch. */
function outChannels(out: Float32Array, N: number, HW: number): number {
  const outC = out.length / (N * HW);
  if (!Number.isInteger(outC) || outC < 1) throw new DitMoeError(`model returned ${out.length} values for ${N} samples of ${HW} pixels`, 'model');
  return outC;
}

/**
 * The model output under guidance, official `forward_with_cfg` (one doubled batch):
 *   x [N, C, H, W], t [N], y [N]  →  [N, outC, H, W]  (the first half of the official output)
 */
export function forwardWithCfg(model: DiffusionModelFn, x: Float32Array, shape: readonly number[], t: Float32Array, y: Int32Array, guidance: Guidance | null | undefined): Float32Array {
  const [N, C, H, W] = shape;
  const HW = H * W;
  if (!guidance) {
    const out = model(x, [N, C, H, W], t, y);
    outChannels(out, N, HW);
    return out;
  }
  const D = C * HW;
  const x2 = new Float32Array(2 * N * D); // combined = cat([half, half])
  x2.set(x, 0);
  x2.set(x, N * D);
  const t2 = new Float32Array(2 * N);
  t2.set(t, 0);
  t2.set(t, N);
  const y2 = new Int32Array(2 * N);
  y2.set(y, 0);
  y2.fill(guidance.nullClass, N);
  const out2 = model(x2, [2 * N, C, H, W], t2, y2);
  const outC = outChannels(out2, 2 * N, HW);
  const G = guidedChannels(guidance, C, outC);
  const half = N * outC * HW;
  const out = new Float32Array(half);
  applyGuidance(out, out2.subarray(0, half), out2.subarray(half), guidance.scale, G, N, outC, outC, HW);
  return out;
}

function isRng(n: StepNoise): n is Rng {
  return typeof (n as Rng).fillNormal === 'function';
}

/** The noise of step i, count values (the first count of an explicit [2N, ...] array). */
function noiseAt(noise: StepNoise, i: number, count: number): Float32Array {
  let arr: Float32Array | undefined;
  if (isRng(noise)) return noise.fillNormal(new Float32Array(count));
  if (typeof noise === 'function') arr = noise(i);
  else arr = (noise as readonly Float32Array[])[i];
  if (!arr) throw new DitMoeError(`no step noise for step ${i}`, 'step noise');
  if (arr.length < count) throw new DitMoeError(`step noise ${i} has ${arr.length} values, needs ${count}`, 'step noise');
  return arr.subarray(0, count);
}

/** The model's timestep input for schedule step s of every sample: timestepMap[s] (float). */
function modelTimesteps(sched: DiffusionSchedule, s: number, N: number): Float32Array {
  return new Float32Array(N).fill(sched.timestepMap[s]);
}

/**
 * p_sample_loop: ancestral DDPM sampling from x_T = z, steps T−1 … 0 of the (respaced) schedule,
 * noise at step i from `noise` (step 0 = the highest t; no noise is used at t = 0).
 *   z [N, C, H, W]  →  x_0 [N, C, H, W]
 */
export function sampleDdpm(o: DiffusionSampleOptions & { noise: StepNoise }): Float32Array {
  const rng = isRng(o.noise);
  return diffusionLoop(o, (sched, x, out, tIdx, s, i, opts, { N, C, HW, D, outC }) => {
    // the official p_sample draws noise at every step, also at t = 0 where it is masked out:
    // an RNG is advanced likewise; explicit noise for the last step may be left out
    const noise = s !== 0 || rng ? noiseAt(o.noise, i, N * D) : new Float32Array(0);
    return ddpmStep(sched, x, out, tIdx, noise, N, C, HW, outC, opts);
  });
}

/**
 * The loop shared by DDPM and DDIM: from x_T = z through the (respaced) schedule, step i at
 * schedule index s = T−1−i, the model fed the original timestep (with guidance when asked),
 * then `step` makes x_{t−1}.
 */
function diffusionLoop(
  o: DiffusionSampleOptions,
  step: (sched: DiffusionSchedule, x: Float32Array, out: Float32Array, tIdx: Int32Array, s: number, i: number, opts: { varType: VarType; clipDenoised: boolean }, d: { N: number; C: number; HW: number; D: number; outC: number }) => StepResult,
): Float32Array {
  const { N, C, H, W, HW, D } = dims(o);
  const sched = o.schedule;
  const opts = { varType: o.varType ?? 'learned_range', clipDenoised: o.clipDenoised ?? false };
  const steps = sched.numTimesteps;
  let x: Float32Array = Float32Array.from(o.z);
  for (let i = 0; i < steps; i++) {
    const s = steps - 1 - i;
    const out = forwardWithCfg(o.model, x, [N, C, H, W], modelTimesteps(sched, s, N), o.y, o.guidance);
    const r = step(sched, x, out, new Int32Array(N).fill(s), s, i, opts, { N, C, HW, D, outC: out.length / (N * HW) });
    x = r.sample;
    o.onStep?.(i, steps, x, r.predXStart);
  }
  return x;
}

/**
 * ddim_sample_loop: DDIM from x_T = z over the (respaced) schedule. With eta = 0 (default) it is
 * deterministic and draws no noise (`noise` may be omitted); eta > 0 needs `noise`.
 *   z [N, C, H, W]  →  x_0 [N, C, H, W]
 */
export function sampleDdim(o: DiffusionSampleOptions & { eta?: number; noise?: StepNoise }): Float32Array {
  dims(o);
  const eta = o.eta ?? 0;
  if (!Number.isFinite(eta) || eta < 0) throw new DitMoeError(`eta must be a finite number ≥ 0, got ${eta}`, '--eta');
  if (eta !== 0 && !o.noise) throw new DitMoeError(`DDIM with eta ${eta} needs step noise or an RNG`, 'ddim');
  return diffusionLoop(o, (sched, x, out, tIdx, s, i, opts, { N, C, HW, D, outC }) => {
    const noise = eta !== 0 && s !== 0 ? noiseAt(o.noise!, i, N * D) : null;
    return ddimStep(sched, x, out, tIdx, noise, eta, N, C, HW, outC, opts);
  });
}

/**
 * RectifiedFlow.sample: Euler from t = 1 (z_1 = z) to t = 0 in `steps` equal steps,
 *   for i = steps … 1:  t = i/steps,  v = v_θ(z, t, y) [guided: v_u + s·(v_c − v_u)],  z ← z − v/steps
 * onStep's x_0 prediction is `sample_with_xps`'s x = z − t·v (taken before the step).
 *   z [N, C, H, W]  →  x_0 [N, C, H, W]
 */
export function sampleRectifiedFlow(o: SampleOptions & { steps: number }): Float32Array {
  const { N, C, H, W, D } = dims(o);
  const S = o.steps;
  if (!Number.isInteger(S) || S < 1) throw new DitMoeError(`steps must be a positive integer, got ${S}`, '--steps');
  const shape = [N, C, H, W];
  const dt = f(1.0 / S); // torch.tensor([dt] * b): float32
  let z: Float32Array = Float32Array.from(o.z);
  for (let i = S; i >= 1; i--) {
    const v = flowVelocity(o.model, z, shape, new Float32Array(N).fill(i / S), o.y, o.guidance);
    const predX0 = new Float32Array(N * D);
    rfPredX0(predX0, z, v, i, dt);
    const next = new Float32Array(N * D);
    rfEulerStep(next, z, v, dt);
    z = next;
    o.onStep?.(S - i, S, z, predX0);
  }
  return z;
}

/**
 * The velocity of a rectified-flow model at t, as `RectifiedFlow.sample` forms it: the first C
 * output channels of the conditional pass, guided with a separate null-class pass
 * (v_u + s·(v_c − v_u)) when asked.
 *   z [N, C, H, W], t [N], y [N]  →  v [N, C, H, W]
 */
export function flowVelocity(model: DiffusionModelFn, z: Float32Array, shape: readonly number[], t: Float32Array, y: Int32Array, guidance: Guidance | null | undefined): Float32Array {
  const [N, C, H, W] = shape;
  const HW = H * W;
  const outC0 = model(z, [N, C, H, W], t, y);
  const outC = outChannels(outC0, N, HW);
  if (outC < C) throw new DitMoeError(`model output has ${outC} channels, fewer than the ${C} of x`, 'model');
  // vc, _ = vc.chunk(2, dim=1): the velocity is the first C channels
  const v = firstChannels(outC0, N, outC, C, HW);
  if (!guidance) return v;
  const outU = model(z, [N, C, H, W], t, new Int32Array(N).fill(guidance.nullClass));
  const outCU = outChannels(outU, N, HW);
  if (outCU !== outC) throw new DitMoeError(`model returned ${outCU} channels for the null pass, ${outC} for the conditional`, 'model');
  const vu = firstChannels(outU, N, outC, C, HW);
  const guided = new Float32Array(N * C * HW);
  applyGuidance(guided, v, vu, guidance.scale, guidedChannels(guidance, C, C), N, C, C, HW);
  return guided;
}

/** out [N, C, HW] = the first C of outC channels of a [N, outC, HW] array. */
export function firstChannels(a: Float32Array, N: number, outC: number, C: number, HW: number): Float32Array {
  if (outC === C) return a;
  const out = new Float32Array(N * C * HW);
  for (let n = 0; n < N; n++) out.set(a.subarray(n * outC * HW, n * outC * HW + C * HW), n * C * HW);
  return out;
}
