/**
 * kind = schedule: noise schedules and respacing (float64). The case names what it wants in
 * `__metadata__.manifest` (or its tensor names): `<schedule><T>.<array>` with schedule
 * `linear` or `cosine` (squaredcos_cap_v2) and array one of betas, alphas_cumprod,
 * alphas_cumprod_prev, alphas_cumprod_next, posterior_variance, posterior_log_variance_clipped,
 * posterior_mean_coef1/2; and `respace.<spec>.betas|timestep_map` (spec "250", "ddim50",
 * "10_15_20" for "10,15,20") of the linear 1000-step process, as `create_diffusion` makes it.
 */
import { DitMoeError } from '../core/errors.js';
import { f64, i64, type StTensor } from '../io/safetensors.js';
import { createDiffusion, type DiffusionSchedule } from '../ref/diffusion/index.js';
import { registerCaseKind } from './case.js';

const ARRAYS: Record<string, keyof DiffusionSchedule> = {
  betas: 'betas',
  alphas_cumprod: 'alphasCumprod',
  alphas_cumprod_prev: 'alphasCumprodPrev',
  alphas_cumprod_next: 'alphasCumprodNext',
  posterior_variance: 'posteriorVariance',
  posterior_log_variance_clipped: 'posteriorLogVarianceClipped',
  posterior_mean_coef1: 'posteriorMeanCoef1',
  posterior_mean_coef2: 'posteriorMeanCoef2',
};

export function wantedNames(metadata: Record<string, string>, tensors: Iterable<string>, where: string): string[] {
  if (metadata.manifest) {
    try {
      const m = JSON.parse(metadata.manifest) as unknown;
      if (Array.isArray(m) && m.every((s) => typeof s === 'string')) return m as string[];
    } catch {
      /* fall through to the error */
    }
    throw new DitMoeError('__metadata__.manifest is not a JSON list of names', where);
  }
  return [...tensors];
}

registerCaseKind('schedule', (c, ctx) => {
  const outs = new Map<string, StTensor>();
  const cache = new Map<string, DiffusionSchedule>();
  const get = (key: string, make: () => DiffusionSchedule) => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key)!;
  };
  for (const name of wantedNames(c.metadata, c.tensors.keys(), ctx.where)) {
    const base = /^(linear|cosine)(\d+)\.(\w+)$/.exec(name);
    const resp = /^respace\.([\w]+)\.(betas|timestep_map)$/.exec(name);
    if (base) {
      const [, kind, steps, arr] = base;
      const field = ARRAYS[arr];
      if (!field) throw new DitMoeError(`unknown schedule array '${arr}' (known: ${Object.keys(ARRAYS).join(', ')})`, `${ctx.where}: ${name}`);
      const s = get(`${kind}${steps}`, () => createDiffusion({ noiseSchedule: kind === 'cosine' ? 'squaredcos_cap_v2' : 'linear', diffusionSteps: Number(steps), respacing: '' }));
      const v = s[field] as Float64Array;
      outs.set(name, f64([v.length], v));
    } else if (resp) {
      const [, spec, arr] = resp;
      const s = get(`respace.${spec}`, () => createDiffusion({ respacing: spec.replace(/_/g, ',') }));
      outs.set(name, arr === 'betas' ? f64([s.betas.length], s.betas) : i64([s.timestepMap.length], s.timestepMap));
    } else throw new DitMoeError(`cannot tell which schedule array '${name}' is`, ctx.where);
  }
  return outs;
});
