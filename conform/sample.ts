/**
 * kind = sample: the samplers end to end, as each output's `__metadata__.recipe` says:
 *   {sampler: ddim | ddpm | rectified_flow_euler, respacing, eta, clip_denoised, steps,
 *    guidance: {scale, null_class, channels: n | "all"}, start: "in.z",
 *    step_noise: "in.ddpm_noise{i}" (DDPM), after_steps (a partial loop, via "same as")}
 * with the labels `in.y` and the schedule of `recipe.schedule` (beta schedule, steps).
 */
import { DitMoeError } from '../core/errors.js';
import { asFloat32, asNumbers, f32, type StTensor } from '../io/safetensors.js';
import { createDiffusion, type Guidance } from '../ref/diffusion/index.js';
import { sampleWith } from '../ref/diffusion/sampling.js';
import { input, metaJson, registerCaseKind } from './case.js';

interface Recipe {
  sampler?: string;
  respacing?: string;
  eta?: number;
  clip_denoised?: boolean;
  steps?: number;
  guidance?: { scale: number; null_class: number; channels: number | 'all' };
  start?: string;
  step_noise?: string;
  'same as'?: string;
  after_steps?: number;
}

registerCaseKind('sample', (c, ctx) => {
  const where = ctx.where;
  const recipes = metaJson<Record<string, Recipe & { beta_schedule?: string; diffusion_steps?: number }>>(c, 'recipe', where);
  const sched = recipes.schedule ?? {};
  const model = ctx.model();
  const fn = (x: Float32Array, s: number[], t: Float32Array, y: Int32Array) => model.forward(x, s, t, y);
  const y = Int32Array.from(asNumbers(input(c, 'in.y', where)));
  const outs = new Map<string, StTensor>();
  for (const [name, raw] of Object.entries(recipes)) {
    if (!name.startsWith('out.')) continue;
    const base = raw['same as'] ? recipes[raw['same as']] : raw;
    if (!base) throw new DitMoeError(`recipe of ${name} refers to unknown '${raw['same as']}'`, where);
    const r: Recipe = { ...base, ...raw };
    const zT = input(c, r.start ?? 'in.z', where);
    const z = asFloat32(zT);
    const shape = zT.shape;
    const guidance: Guidance | null = r.guidance ? { scale: r.guidance.scale, nullClass: r.guidance.null_class, channels: r.guidance.channels } : null;
    let out: Float32Array;
    const io = { model: fn, z, shape, y };
    if (r.sampler === 'rectified_flow_euler') {
      const steps = r.steps ?? 0;
      const stopAfter = r.after_steps ?? steps;
      let partial: Float32Array | null = null;
      out = sampleWith({ sampler: 'flow', steps, guidance }, { ...io, onStep: (i, _n, x) => i + 1 === stopAfter && (partial = Float32Array.from(x)) });
      if (partial) out = partial;
    } else if (r.sampler === 'ddim' || r.sampler === 'ddpm') {
      const setup = { sampler: r.sampler as 'ddim' | 'ddpm', guidance, respacing: r.respacing, betaSchedule: sched.beta_schedule, diffusionSteps: sched.diffusion_steps, clipDenoised: !!r.clip_denoised };
      const numSteps = createDiffusion({ respacing: r.respacing, noiseSchedule: sched.beta_schedule, diffusionSteps: sched.diffusion_steps }).numTimesteps;
      if (r.sampler === 'ddim') out = sampleWith({ ...setup, steps: numSteps, eta: r.eta ?? 0 }, io);
      else {
        const pattern = r.step_noise?.split(',')[0].trim() ?? 'in.ddpm_noise{i}';
        const noise = Array.from({ length: numSteps }, (_, i) => c.tensors.get(pattern.replace('{i}', String(i))));
        if (noise.slice(0, -1).some((n) => !n)) throw new DitMoeError(`DDPM needs step noise '${pattern}' for each of ${numSteps} steps`, where);
        out = sampleWith({ ...setup, steps: numSteps }, { ...io, noise: noise.map((n) => (n ? asFloat32(n) : new Float32Array(0))) });
      }
    } else throw new DitMoeError(`unknown sampler '${r.sampler}' in the recipe of ${name}`, where);
    outs.set(name, f32(shape, out));
  }
  return outs;
});
