/**
 * kind = solvers: the fast samplers end to end, as each output's `__metadata__.recipe` says:
 *   DPM-Solver(++) {algorithm_type: dpmsolver | dpmsolver++, steps, order, skip_type, method,
 *     lower_order_final, t_start, t_end, guidance: {scale, null_class, channels} | null}
 *     on the model as a DDPM noise predictor (its first C output channels), the official linear
 *     schedule of 1000 steps (ref/diffusion/dpmSolver.ts);
 *   Heun {sampler: heun, steps, guidance} on the model as a rectified-flow velocity (ref/diffusion/heun.ts),
 * from `in.z` with the labels `in.y`.
 */
import { DitMoeError } from '../core/errors.js';
import { asFloat32, asNumbers, f32, type StTensor } from '../io/safetensors.js';
import { sampleDpmSolver, type DpmAlgorithm, type DpmMethod, type DpmSkipType } from '../ref/diffusion/dpmSolver.js';
import { sampleHeun } from '../ref/diffusion/heun.js';
import type { Guidance } from '../ref/diffusion/samplers.js';
import { input, metaJson, registerCaseKind } from './case.js';

interface Recipe {
  sampler?: string;
  algorithm_type?: DpmAlgorithm;
  steps?: number;
  order?: number;
  skip_type?: DpmSkipType;
  method?: DpmMethod;
  lower_order_final?: boolean;
  denoise_to_zero?: boolean;
  t_start?: number;
  t_end?: number;
  guidance?: { scale: number; null_class: number; channels: number | 'all' } | null;
  start?: string;
  labels?: string;
}

registerCaseKind('solvers', (c, ctx) => {
  const where = ctx.where;
  const recipes = metaJson<Record<string, Recipe>>(c, 'recipe', where);
  const model = ctx.model();
  const fn = (x: Float32Array, s: number[], t: Float32Array, y: Int32Array) => model.forward(x, s, t, y);
  const outs = new Map<string, StTensor>();
  for (const [name, r] of Object.entries(recipes)) {
    if (!name.startsWith('out.')) continue;
    const zT = input(c, r.start ?? 'in.z', where);
    const z = asFloat32(zT);
    const shape = zT.shape;
    const y = Int32Array.from(asNumbers(input(c, r.labels ?? 'in.y', where)));
    const guidance: Guidance | null = r.guidance ? { scale: r.guidance.scale, nullClass: r.guidance.null_class, channels: r.guidance.channels } : null;
    const steps = r.steps ?? NaN;
    let out: Float32Array;
    if (r.sampler === 'heun') out = sampleHeun({ model: fn, z, shape, y, guidance, steps });
    else if (r.algorithm_type === 'dpmsolver' || r.algorithm_type === 'dpmsolver++') {
      if (r.denoise_to_zero) throw new DitMoeError(`denoise_to_zero is not supported (recipe of ${name})`, where);
      out = sampleDpmSolver({ model: fn, z, shape, y, guidance, prediction: 'noise', algorithm: r.algorithm_type, steps, order: r.order, skipType: r.skip_type, method: r.method, lowerOrderFinal: r.lower_order_final, tStart: r.t_start, tEnd: r.t_end });
    } else throw new DitMoeError(`unknown solver in the recipe of ${name} (heun, or algorithm_type dpmsolver | dpmsolver++)`, where);
    outs.set(name, f32(shape, out));
  }
  return outs;
});
