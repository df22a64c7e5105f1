/**
 * Timestep respacing (Improved DDPM §4, "Improving sampling speed"), as the official
 * `respace.py`: sample with a subset of the original steps. The respaced process has its own
 * betas, chosen so that its ᾱ equal the original ᾱ at the kept steps:
 *   β'_i = 1 − ᾱ_{k_i} / ᾱ_{k_{i−1}}   (ᾱ_{k_{−1}} = 1)
 * and keeps `timestepMap[i] = k_i`, the original timestep the model is fed at step i.
 *
 *   spaceTimesteps(T, spec)  →  sorted kept steps
 *   respaceBetas(betas [T], kept)  →  betas' [len(kept)], timestepMap [len(kept)]
 *   createDiffusion(opts)  →  DiffusionSchedule (the official `create_diffusion`)
 */
import { DitMoeError } from '../../core/errors.js';
import { makeSchedule, namedBetas, type DiffusionSchedule } from './schedule.js';

/** Python's `round(x)` for a float: nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact for doubles
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function parseCount(s: string, spec: string): number {
  // Python's int() accepts surrounding whitespace and a sign; counts below 1 give no steps at all
  if (!/^\s*\+?\d+\s*$/.test(s)) throw new DitMoeError(`unknown timestep respacing '${spec}' (expected "N", "N1,N2,..." or "ddimN", N a positive integer)`, 'respacing');
  const n = parseInt(s, 10);
  if (n < 1) throw new DitMoeError(`timestep respacing '${spec}' asks for ${n} steps; need at least 1`, 'respacing');
  return n;
}

/**
 * `space_timesteps(num_timesteps, section_counts)`:
 *  - "ddimN": the smallest integer stride s with |range(0, T, s)| = N (the DDIM paper's striding);
 *  - "N1,N2,...": T split into equal sections (the first T mod K one step longer), section j
 *    strided to Nj steps at the fractional stride (size − 1)/(Nj − 1), each index rounded with
 *    Python's round (ties to even) from the accumulating float, as the official loop does;
 *  - "" (or undefined): every step.
 * Returns the kept steps sorted ascending (the official set, iterated in order).
 */
export function spaceTimesteps(numTimesteps: number, spec: string | number | readonly number[] | undefined): number[] {
  const T = numTimesteps;
  if (!Number.isInteger(T) || T < 1) throw new DitMoeError(`diffusion steps must be a positive integer, got ${T}`, 'diffusion_steps');
  let counts: number[];
  if (spec === undefined || spec === '') {
    counts = [T];
  } else if (typeof spec === 'number') {
    counts = [parseCount(String(spec), String(spec))];
  } else if (typeof spec === 'string') {
    if (spec.startsWith('ddim')) {
      const desired = parseCount(spec.slice(4), spec);
      // len(range(0, T, s)) = ceil(T / s)
      for (let s = 1; s < T; s++) {
        if (Math.ceil(T / s) === desired) return Array.from({ length: desired }, (_, i) => i * s);
      }
      throw new DitMoeError(`cannot create exactly ${desired} steps out of ${T} with an integer stride`, 'respacing');
    }
    counts = spec.split(',').map((s) => parseCount(s, spec));
  } else {
    counts = spec.map((n) => parseCount(String(n), spec.join(',')));
  }

  const sizePer = Math.floor(T / counts.length);
  const extra = T % counts.length;
  let startIdx = 0;
  const all: number[] = [];
  counts.forEach((count, i) => {
    const size = sizePer + (i < extra ? 1 : 0);
    if (size < count) throw new DitMoeError(`cannot divide a section of ${size} steps into ${count} (${T} diffusion steps, ${counts.length} section(s))`, 'respacing');
    const fracStride = count <= 1 ? 1 : (size - 1) / (count - 1);
    let cur = 0.0;
    for (let k = 0; k < count; k++) {
      all.push(startIdx + roundHalfEven(cur));
      cur += fracStride;
    }
    startIdx += size;
  });
  return [...new Set(all)].sort((a, b) => a - b);
}

/**
 * The respaced betas of `SpacedDiffusion.__init__`: β'_i = 1 − ᾱ_{k_i} / ᾱ_{k_{i−1}}.
 *   alphasCumprod [T] (of the base process), kept (sorted)  →  betas' [n], timestepMap [n]
 */
export function respaceBetas(alphasCumprod: Float64Array, kept: readonly number[]): { betas: Float64Array; timestepMap: Int32Array } {
  const keep = new Set(kept);
  const betas: number[] = [];
  const map: number[] = [];
  let last = 1.0;
  for (let i = 0; i < alphasCumprod.length; i++) {
    if (keep.has(i)) {
      betas.push(1 - alphasCumprod[i] / last);
      last = alphasCumprod[i];
      map.push(i);
    }
  }
  return { betas: Float64Array.from(betas), timestepMap: Int32Array.from(map) };
}

export interface CreateDiffusionOptions {
  /** "250", "10,15,20", "ddim50", or ""/undefined for every step. */
  respacing?: string;
  /** 'linear' (default) or 'squaredcos_cap_v2' ('cosine'). */
  noiseSchedule?: string;
  /** Steps of the original process (default 1000). */
  diffusionSteps?: number;
}

/** The official `create_diffusion(timestep_respacing, noise_schedule, ..., diffusion_steps)`: base betas, respaced. */
export function createDiffusion(opts: CreateDiffusionOptions = {}): DiffusionSchedule {
  const T = opts.diffusionSteps ?? 1000;
  const base = makeSchedule(namedBetas(opts.noiseSchedule ?? 'linear', T));
  const kept = spaceTimesteps(T, opts.respacing);
  const { betas, timestepMap } = respaceBetas(base.alphasCumprod, kept);
  return makeSchedule(betas, timestepMap, T);
}
