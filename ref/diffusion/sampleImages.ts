/**
 * Class-conditional sampling of a DiT model as the CLI, the explorer page and the analysis
 * report do it: start noise and step noise from one seeded RNG (`makeRng(seed)`), guidance with
 * the null class, the sampler by name. The same request gives the same bytes wherever it runs.
 */
import { DitMoeError } from '../errors.js';
import { dims } from '../config.js';
import type { DiTModel } from '../model.js';
import { makeRng } from './rng.js';
import { createDiffusion } from './respace.js';
import { sampleDdim, sampleDdpm, sampleRectifiedFlow, type Guidance, type DiffusionModelFn } from './samplers.js';

/**
 * The samplers by name, with the model objective each needs: a user interface lists these
 * (adding a sampler is one line here and its case in `sampleImages`).
 */
export const SAMPLERS = [
  { name: 'flow', label: 'rectified flow (Euler)', needs: 'flow' },
  { name: 'ddim', label: 'DDIM', needs: 'learned sigma' },
  { name: 'ddpm', label: 'DDPM (ancestral)', needs: 'learned sigma' },
] as const;
export type SamplerName = (typeof SAMPLERS)[number]['name'];

export interface SampleRequest {
  sampler: SamplerName;
  steps: number;
  labels: Int32Array;
  cfg: number; // 1 = no guidance
  guidedChannels: number | 'all';
  seed: number;
  eta?: number;
  schedule?: string; // beta schedule name for ddpm/ddim
  onStep?: (i: number, n: number, x: Float32Array, predX0: Float32Array) => void;
  modelFn?: DiffusionModelFn; // used instead of model.forward (e.g. a routing recorder's wrapper)
}

/** Samples `labels.length` images from `model`; start noise and step noise from the seeded RNG. */
export function sampleImages(model: DiTModel, r: SampleRequest): Float32Array {
  const c = model.config;
  const N = r.labels.length;
  const shape = [N, c.in_channels, c.input_size, c.input_size];
  const rng = makeRng(r.seed);
  const z = new Float32Array(N * c.in_channels * c.input_size * c.input_size);
  rng.fillNormal(z);
  const hasNull = dims(c).numLabels > c.num_classes;
  if (r.cfg !== 1 && !hasNull) throw new DitMoeError('guidance needs a null class, and this model has none (class_dropout_prob = 0)', '--cfg');
  const guidance: Guidance | null = r.cfg !== 1 ? { scale: r.cfg, nullClass: c.num_classes, channels: r.guidedChannels } : null;
  const fn = r.modelFn ?? ((x: Float32Array, s: number[], t: Float32Array, y: Int32Array) => model.forward(x, s, t, y));
  if (r.sampler === 'flow') return sampleRectifiedFlow({ model: fn, z, shape, y: r.labels, guidance, steps: r.steps, onStep: r.onStep });
  if ((r.sampler === 'ddpm' || r.sampler === 'ddim') && !c.learn_sigma) throw new DitMoeError('this model has no learned sigma; sample it with --sampler flow (or train with the ddpm objective)', '--sampler');
  const schedule = createDiffusion({ respacing: r.sampler === 'ddim' ? `ddim${r.steps}` : String(r.steps), noiseSchedule: r.schedule });
  if (r.sampler === 'ddim') return sampleDdim({ model: fn, z, shape, y: r.labels, guidance, schedule, eta: r.eta ?? 0, noise: rng, onStep: r.onStep });
  return sampleDdpm({ model: fn, z, shape, y: r.labels, guidance, schedule, noise: rng, onStep: r.onStep });
}
