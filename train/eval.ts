/**
 * Sample quality of a class-conditional digit model, the check of issue 4:
 *   generateSamples:   `perClass` samples of every class, with classifier-free guidance
 *                      (rectified flow: Euler from t = 1 to 0; ddpm: DDIM over a respaced schedule;
 *                      or any sampler of ref/diffusion/sampling.ts),
 *                      start noise from the seed
 *   nearestNeighbours: for each sample, the nearest real image (L2 over pixels) and its label
 *   evaluateSamples:   1-NN accuracy (the requested label is the neighbour's) and the mean
 *                      nearest-neighbour distance; as a yardstick the same distance for real
 *                      digits to their nearest *other* real digit (a model that copies its
 *                      training digits scores far below it, one that draws noise far above)
 */
import { DitMoeError } from '../core/errors.js';
import type { DiTModel } from '../ref/model.js';
import { sampleWith, type SamplerSetup } from '../ref/diffusion/sampling.js';
import type { Dataset } from './data.js';
import { streamRng } from './random.js';
import type { Objective } from './presets.js';

export interface SampleSettings {
  objective: Objective;
  steps: number; // sampler steps (Euler for flow, DDIM for ddpm unless `solver` names another)
  cfg: number; // guidance scale (1: none)
  seed: number;
  /** Another sampler and its options (ref/diffusion/sampling.ts); default Euler (flow) or DDIM (ddpm). */
  solver?: Omit<SamplerSetup, 'steps' | 'guidance'>;
}

/** Samples [K·perClass, C, H, W] clipped to [−1, 1], class-major (perClass of class 0 first), and their labels. */
export function generateSamples(model: DiTModel, classes: number[], perClass: number, s: SampleSettings, onStep?: (i: number, n: number) => void): { images: Float32Array; labels: Int32Array } {
  const c = model.config;
  if (!Number.isInteger(s.steps) || s.steps < 1) throw new DitMoeError(`${s.steps} must be a positive integer`, '--sample-steps');
  if (!Number.isFinite(s.cfg)) throw new DitMoeError(`${s.cfg} is not a number`, '--cfg');
  for (const k of classes) if (!Number.isInteger(k) || k < 0 || k >= c.num_classes) throw new DitMoeError(`class ${k} is not in [0, ${c.num_classes})`, 'classes');
  const guided = s.cfg !== 1;
  if (guided && c.class_dropout_prob === 0) throw new DitMoeError('the model has no null class (class_dropout_prob 0), so it cannot be guided; use --cfg 1', '--cfg');
  const N = classes.length * perClass;
  const shape = [N, c.in_channels, c.input_size, c.input_size];
  const y = new Int32Array(N);
  classes.forEach((k, i) => y.fill(k, i * perClass, (i + 1) * perClass));
  const z = streamRng(s.seed, 'sample', 0).fillNormal(new Float32Array(N * c.in_channels * c.input_size * c.input_size));
  const fn = (x: Float32Array, sh: number[], t: Float32Array, yy: Int32Array) => model.forward(x, sh, t, yy);
  const guidance = guided ? { scale: s.cfg, nullClass: c.num_classes, channels: 'all' as const } : null;
  const onS = onStep ? (i: number, n: number) => onStep(i + 1, n) : undefined;
  const setup: SamplerSetup = { sampler: s.objective === 'flow' ? 'flow' : 'ddim', varType: c.learn_sigma ? 'learned_range' : 'fixed_small', ...s.solver, steps: s.steps, guidance };
  // DDPM ancestral (and DDIM with eta > 0) draw step noise: its own stream of the seed
  const noise = streamRng(s.seed, 'sample-steps', 0);
  const out = sampleWith(setup, { model: fn, z, shape, y, objective: s.objective, noise, onStep: onS });
  for (let i = 0; i < out.length; i++) out[i] = Math.max(-1, Math.min(1, out[i]));
  return { images: out, labels: y };
}

/** For each of N queries [N, P], the index of the nearest of the data's images (L2) and the distance; `exclude[i]` (a data index) is skipped. */
export function nearestNeighbours(queries: Float32Array, N: number, data: Dataset, exclude?: Int32Array): { index: Int32Array; distance: Float64Array } {
  const P = data.C * data.H * data.W;
  if (queries.length !== N * P) throw new DitMoeError(`${queries.length} values for ${N} queries of ${P} pixels`, 'nearest neighbours');
  const index = new Int32Array(N);
  const distance = new Float64Array(N);
  const X = data.images;
  for (let n = 0; n < N; n++) {
    const q = n * P;
    let best = Infinity;
    let bi = -1;
    for (let j = 0; j < data.N; j++) {
      if (exclude && exclude[n] === j) continue;
      const o = j * P;
      let d = 0;
      for (let i = 0; i < P && d < best; i++) {
        const e = queries[q + i] - X[o + i];
        d += e * e;
      }
      if (d < best) {
        best = d;
        bi = j;
      }
    }
    index[n] = bi;
    distance[n] = Math.sqrt(best);
  }
  return { index, distance };
}

export interface EvalReport {
  samples: number;
  accuracy: number; // share of samples whose nearest real digit has the requested label
  perClass: number[]; // accuracy per class
  meanNNDistance: number; // mean L2 distance (pixels in [−1, 1]) to the nearest real digit
  realNNDistance: number; // the same for real digits to their nearest other real digit
}

/** 1-NN accuracy and distances of samples with requested labels against a data set. */
export function evaluateSamples(images: Float32Array, labels: Int32Array, data: Dataset, seed = 0, realProbe = 200): EvalReport {
  const N = labels.length;
  const nn = nearestNeighbours(images, N, data);
  const K = data.numClasses;
  const hit = new Array<number>(K).fill(0);
  const tot = new Array<number>(K).fill(0);
  let correct = 0;
  let dist = 0;
  for (let n = 0; n < N; n++) {
    const ok = data.labels[nn.index[n]] === labels[n];
    if (ok) correct++;
    if (labels[n] < K) {
      tot[labels[n]]++;
      if (ok) hit[labels[n]]++;
    }
    dist += nn.distance[n];
  }
  // yardstick: real digits (a seeded subset) against the rest
  const M = Math.min(realProbe, data.N - 1);
  const rng = streamRng(seed, 'eval-probe', 0);
  const pick = new Int32Array(M);
  for (let i = 0; i < M; i++) pick[i] = Math.floor(rng.uniform() * data.N);
  const P = data.C * data.H * data.W;
  const probe = new Float32Array(M * P);
  for (let i = 0; i < M; i++) probe.set(data.images.subarray(pick[i] * P, (pick[i] + 1) * P), i * P);
  const real = nearestNeighbours(probe, M, data, pick);
  const realMean = real.distance.reduce((p, q) => p + q, 0) / Math.max(1, M);
  return { samples: N, accuracy: correct / N, perClass: hit.map((h, k) => (tot[k] ? h / tot[k] : NaN)), meanNNDistance: dist / N, realNNDistance: realMean };
}
