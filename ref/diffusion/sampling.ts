/**
 * One sampling setup for every caller (the CLI's `sample` and `analyze`, evaluation, the
 * conformance cases): a sampler name and its options in, the loop of the right file out.
 *
 *   sampler    model                  loop                                   evaluations per image
 *   ddpm       noise (learned sigma)  sampleDdpm, respaced to `steps`        steps
 *   ddim       noise                  sampleDdim, respaced `ddim<steps>`     steps
 *   flow       velocity               sampleRectifiedFlow (Euler)            steps
 *   heun       velocity               sampleHeun                             2·steps − 1
 *   dpm++2m    noise or velocity      DPM-Solver++ multistep, order 2        steps
 *   dpm++3m    noise or velocity      DPM-Solver++ multistep, order 3        steps
 *   dpm2s      noise                  DPM-Solver singlestep, order 2         steps
 * (an evaluation is one conditional pass; guidance adds the null-class pass to each.)
 * `order` overrides the order in the DPM names; `spacing` (time_uniform | logSNR |
 * time_quadratic) and `lowerOrderFinal` are the reference's skip_type and lower_order_final.
 *
 *   checkSampler(setup, objective)   the one-line errors for a bad combination
 *   sampleWith(setup, o)             z [N, C, H, W]  →  x_0 [N, C, H, W]
 *   sampleImages(model, request)     start noise from a seed, labels, guidance from a scale
 */
import { DitMoeError } from '../../core/errors.js';
import { dims as configDims, type DiTConfig } from '../config.js';
import { makeRng } from './rng.js';
import { createDiffusion } from './respace.js';
import { namedBetas } from './schedule.js';
import type { VarType } from './gaussian.js';
import { sampleDdim, sampleDdpm, sampleRectifiedFlow, type DiffusionModelFn, type Guidance, type OnStep, type SampleOptions, type StepNoise } from './samplers.js';
import { checkDpmOptions, sampleDpmSolver, type DpmAlgorithm, type DpmMethod, type DpmSkipType } from './dpmSolver.js';
import { sampleHeun } from './heun.js';

export const SAMPLERS = ['ddpm', 'ddim', 'flow', 'heun', 'dpm++2m', 'dpm++3m', 'dpm2s'] as const;
export type SamplerName = (typeof SAMPLERS)[number];
export const SPACINGS: readonly DpmSkipType[] = ['time_uniform', 'logSNR', 'time_quadratic'];

/** What the network predicts: 'ddpm' = noise (ε, usually with learned sigma), 'flow' = a rectified-flow velocity. */
export type Objective = 'ddpm' | 'flow';

export interface SamplerSetup {
  sampler: SamplerName;
  steps: number;
  guidance?: Guidance | null;
  /** DDPM / DDIM / DPM-Solver on a DDPM model: the beta schedule (default linear) and its length (default 1000). */
  betaSchedule?: string;
  diffusionSteps?: number;
  /** DDPM / DDIM: the respacing (default `steps` for ddpm, `ddim<steps>` for ddim). */
  respacing?: string;
  /** DDPM / DDIM: the variance of the model (default learned_range) and x̂_0 clipping (default off). */
  varType?: VarType;
  clipDenoised?: boolean;
  /** DDIM: eta (default 0). */
  eta?: number;
  /** DPM-Solver(++): the order (default: from the name), spacing (default time_uniform), lower_order_final (default true). */
  order?: number;
  spacing?: DpmSkipType;
  lowerOrderFinal?: boolean;
}

interface SolverInfo {
  needs: Objective | 'either';
  algorithm?: DpmAlgorithm;
  method?: DpmMethod;
  order?: number;
}
const INFO: Record<SamplerName, SolverInfo> = {
  ddpm: { needs: 'ddpm' },
  ddim: { needs: 'ddpm' },
  flow: { needs: 'flow' },
  heun: { needs: 'flow' },
  'dpm++2m': { needs: 'either', algorithm: 'dpmsolver++', method: 'multistep', order: 2 },
  'dpm++3m': { needs: 'either', algorithm: 'dpmsolver++', method: 'multistep', order: 3 },
  dpm2s: { needs: 'ddpm', algorithm: 'dpmsolver', method: 'singlestep', order: 2 },
};

/** A sampler's name as a user interface shows it. */
export const SAMPLER_LABELS: Record<SamplerName, string> = {
  ddpm: 'DDPM (ancestral)',
  ddim: 'DDIM',
  flow: 'rectified flow (Euler)',
  heun: 'Heun (rectified flow)',
  'dpm++2m': 'DPM-Solver++ 2M',
  'dpm++3m': 'DPM-Solver++ 3M',
  dpm2s: 'DPM-Solver 2S',
};

/** The model a sampler needs: a noise predictor ('ddpm'), a velocity ('flow'), or either. */
export function samplerNeeds(s: SamplerName): Objective | 'either' {
  return INFO[s].needs;
}

/** Model evaluations per image (each doubled by guidance's null pass). */
export function modelEvaluations(s: Pick<SamplerSetup, 'sampler' | 'steps'>): number {
  return s.sampler === 'heun' ? 2 * s.steps - 1 : s.steps;
}

/**
 * The one-line errors of a bad setup: an unknown sampler or spacing, options of another solver,
 * an order the steps cannot support, a solver for noise predictors on a flow or the reverse
 * (`objective` undefined: not known, not checked).
 */
export function checkSampler(s: SamplerSetup, objective?: Objective): void {
  const info = INFO[s.sampler];
  if (!info) throw new DitMoeError(`unknown sampler '${s.sampler as string}' (${SAMPLERS.join(', ')})`, '--sampler');
  if (!Number.isInteger(s.steps) || s.steps < 1) throw new DitMoeError(`'${s.steps}' is not a positive integer`, '--steps');
  if (objective && info.needs !== 'either' && info.needs !== objective) {
    const fits = SAMPLERS.filter((n) => INFO[n].needs === 'either' || INFO[n].needs === objective).join(', ');
    const what = objective === 'flow' ? 'a rectified flow (it predicts a velocity)' : 'a DDPM model (it predicts noise)';
    throw new DitMoeError(`${s.sampler} needs a ${info.needs === 'flow' ? 'rectified-flow velocity' : 'noise-predicting (DDPM)'} model; this one is ${what}: use ${fits}`, '--sampler');
  }
  if (!info.algorithm) {
    if (s.order !== undefined) throw new DitMoeError(`only the DPM-Solver samplers (dpm++2m, dpm++3m, dpm2s) have an order, not ${s.sampler}`, '--order');
    if (s.spacing !== undefined) throw new DitMoeError(`only the DPM-Solver samplers (dpm++2m, dpm++3m, dpm2s) have a time spacing, not ${s.sampler}`, '--spacing');
    if (s.lowerOrderFinal !== undefined) throw new DitMoeError(`only the DPM-Solver samplers (dpm++2m, dpm++3m, dpm2s) have lower-order final steps, not ${s.sampler}`, '--lower-order-final');
    return;
  }
  if (s.spacing !== undefined && !SPACINGS.includes(s.spacing)) throw new DitMoeError(`unknown time spacing '${s.spacing as string}' (${SPACINGS.join(', ')})`, '--spacing');
  const order = s.order ?? info.order!;
  if (![1, 2, 3].includes(order)) throw new DitMoeError(`order must be 1, 2 or 3, got ${order}`, '--order');
  checkDpmOptions(s.steps, order, info.method!);
  if (objective === 'flow') {
    if (s.spacing === 'logSNR') throw new DitMoeError('a rectified flow runs from λ = −∞ to +∞, which has no uniform logSNR grid; use time_uniform or time_quadratic', '--spacing');
  }
}

/** Whether guided calls come as one doubled batch [x; x] / [y; null] or as two passes (conditional, then null). */
export function guidancePasses(s: Pick<SamplerSetup, 'sampler'>, objective: Objective): 'doubled' | 'separate' {
  return s.sampler === 'flow' || s.sampler === 'heun' || ((s.sampler === 'dpm++2m' || s.sampler === 'dpm++3m') && objective === 'flow') ? 'separate' : 'doubled';
}

/**
 * Runs the setup's sampler from z with the labels y. `objective`, when known, is checked against
 * the sampler; `prediction` picks DPM-Solver++'s form of the model (default: the objective, else
 * ddpm); `noise` is the step noise of DDPM (and DDIM with eta > 0).
 *   z [N, C, H, W]  →  x_0 [N, C, H, W]
 */
export function sampleWith(s: SamplerSetup, o: SampleOptions & { objective?: Objective; prediction?: Objective; noise?: StepNoise }): Float32Array {
  checkSampler(s, o.objective);
  const base = { model: o.model, z: o.z, shape: o.shape, y: o.y, guidance: s.guidance ?? o.guidance ?? null, onStep: o.onStep };
  const info = INFO[s.sampler];
  if (s.sampler === 'flow') return sampleRectifiedFlow({ ...base, steps: s.steps });
  if (s.sampler === 'heun') return sampleHeun({ ...base, steps: s.steps });
  if (s.sampler === 'ddpm' || s.sampler === 'ddim') {
    const schedule = createDiffusion({ respacing: s.respacing ?? (s.sampler === 'ddim' ? `ddim${s.steps}` : String(s.steps)), noiseSchedule: s.betaSchedule, diffusionSteps: s.diffusionSteps });
    const opts = { ...base, schedule, varType: s.varType, clipDenoised: s.clipDenoised };
    if (s.sampler === 'ddim') return sampleDdim({ ...opts, eta: s.eta ?? 0, noise: o.noise });
    if (!o.noise) throw new DitMoeError('DDPM needs step noise or an RNG', 'ddpm');
    return sampleDdpm({ ...opts, noise: o.noise });
  }
  const flow = (o.prediction ?? o.objective) === 'flow';
  return sampleDpmSolver({
    ...base,
    prediction: flow ? 'velocity' : 'noise',
    betas: flow ? undefined : namedBetas(s.betaSchedule ?? 'linear', s.diffusionSteps ?? 1000),
    algorithm: info.algorithm,
    method: info.method,
    order: s.order ?? info.order,
    steps: s.steps,
    skipType: s.spacing,
    lowerOrderFinal: s.lowerOrderFinal,
  });
}

/** What a model of unknown objective predicts: noise when it has learned sigma (DiT's DDPM form), else a velocity. */
export function predictionOf(c: Pick<DiTConfig, 'learn_sigma'>): Objective {
  return c.learn_sigma ? 'ddpm' : 'flow';
}

/** What `sampleImages` needs of a model (a DiTModel). */
export interface SamplableModel {
  readonly config: DiTConfig;
  forward(x: Float32Array, shape: readonly number[], t: ArrayLike<number>, y: ArrayLike<number>): Float32Array;
}

export interface SampleRequest extends Omit<SamplerSetup, 'guidance' | 'steps'> {
  steps: number;
  labels: Int32Array;
  cfg: number; // 1 = no guidance
  guidedChannels: number | 'all';
  seed: number;
  /** ddpm: a noise predictor; flow: a velocity (default: flow unless the model has learned sigma). */
  objective?: Objective;
  /** Beta schedule name for the DDPM samplers (default linear). */
  schedule?: string;
  onStep?: OnStep;
  modelFn?: DiffusionModelFn; // used instead of model.forward (e.g. a routing recorder's wrapper)
}

/**
 * Samples `labels.length` images from `model`: start noise, then step noise, from makeRng(seed);
 * guidance with the null class when cfg ≠ 1.
 */
export function sampleImages(model: SamplableModel, r: SampleRequest): Float32Array {
  const c = model.config;
  const N = r.labels.length;
  const shape = [N, c.in_channels, c.input_size, c.input_size];
  const rng = makeRng(r.seed);
  const z = new Float32Array(N * c.in_channels * c.input_size * c.input_size);
  rng.fillNormal(z);
  const hasNull = configDims(c).numLabels > c.num_classes;
  if (r.cfg !== 1 && !hasNull) throw new DitMoeError('guidance needs a null class, and this model has none (class_dropout_prob = 0)', '--cfg');
  const guidance: Guidance | null = r.cfg !== 1 ? { scale: r.cfg, nullClass: c.num_classes, channels: r.guidedChannels } : null;
  const fn = r.modelFn ?? ((x: Float32Array, s: number[], t: Float32Array, y: Int32Array) => model.forward(x, s, t, y));
  if ((r.sampler === 'ddpm' || r.sampler === 'ddim' || r.sampler === 'dpm2s') && !c.learn_sigma && r.objective !== 'ddpm') throw new DitMoeError('this model has no learned sigma; sample it with --sampler flow (or train with the ddpm objective)', '--sampler');
  const setup: SamplerSetup = { ...r, guidance, betaSchedule: r.betaSchedule ?? r.schedule };
  return sampleWith(setup, { model: fn, z, shape, y: r.labels, objective: r.objective, prediction: r.objective ?? predictionOf(c), noise: rng, onStep: r.onStep });
}
