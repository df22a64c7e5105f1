/**
 * Upcycling, as the official `upcycle.py`: a DiT-MoE with E experts from a checkpoint of the
 * same model with fewer (usually one). For every tensor of the E-expert model, in the official
 * state_dict order:
 *   same name, same shape in the source            → copied
 *   same name, another shape (the router moe.gate.weight [E_src, D] → [E, D])
 *                                                   → N(0, 0.02), drawn in that order from `seed`
 *   absent (moe.experts.e.* for e ≥ E_src)          → a copy of the source's moe.experts.0.*
 * So a source with several experts keeps them, and every new expert is a copy of expert 0.
 * (upcycle.py reads the same names; it builds the target with use_flash_attn = True and the
 * official defaults, here the target is the source's configuration with E experts.)
 *
 * What it preserves: with identical experts the routed sum is (Σ top-k weights) · Expert0(h),
 * so the block equals the source's when the top-k weights sum to what the source's did: with
 * norm_topk_prob they sum to 1 for any router, as a one-expert source's single weight does; with
 * a uniform router (zero gate) and no renormalisation they sum to k/E (spec/upcycle.test.ts).
 */
import { DitMoeError } from '../core/errors.js';
import { validateConfig, type DiTConfig } from './config.js';
import { paramSpecs } from './params.js';
import { configMismatch, describeMismatch } from './inferConfig.js';
import { makeRng } from './diffusion/rng.js';
import { sameShape, numel } from '../core/tensor.js';
import { floatToHalf, halfToFloat, floatToBf16, bf16ToFloat, type StTensor } from '../core/dtype.js';

export interface UpcycleOptions {
  /** Experts of the result (more than the source has). */
  experts: number;
  /** Experts per token of the result (default: the source's, at least 2 as upcycle.py's default, at most `experts`). */
  topK?: number;
  /** Seed of the router initialisation. */
  seed: number;
  /** Standard deviation of the router initialisation (0.02 as upcycle.py). */
  std?: number;
}

export interface UpcycleReport {
  copied: string[]; // same name and shape in the source
  fromExpert0: [string, string][]; // [new tensor, the source tensor it copies]
  initialised: string[]; // drawn from N(0, std)
}

export interface UpcycleResult {
  config: DiTConfig;
  /** The new state dict in the official order; copies share the source's data arrays (treat them as read-only). */
  tensors: Map<string, StTensor>;
  report: UpcycleReport;
}

/** Rounds in place to what a float16/bfloat16 file will hold, so the in-memory model equals the written one. */
function roundTo(dtype: StTensor['dtype'], a: Float32Array): void {
  if (dtype === 'F16') for (let i = 0; i < a.length; i++) a[i] = halfToFloat(floatToHalf(a[i]));
  else if (dtype === 'BF16') for (let i = 0; i < a.length; i++) a[i] = bf16ToFloat(floatToBf16(a[i]));
}

export function upcycle(source: ReadonlyMap<string, StTensor>, sourceConfig: DiTConfig, opts: UpcycleOptions, where = 'source'): UpcycleResult {
  const E = opts.experts;
  const Esrc = sourceConfig.num_experts;
  if (!Number.isInteger(E) || E <= Esrc) throw new DitMoeError(`${E} is not more than the source's ${Esrc} expert${Esrc === 1 ? '' : 's'}: upcycling adds experts`, '--experts');
  const k = opts.topK ?? Math.min(E, Math.max(2, sourceConfig.num_experts_per_tok));
  const std = opts.std ?? 0.02;
  if (!(std >= 0) || !Number.isFinite(std)) throw new DitMoeError(`${std} is not a standard deviation`, 'std');
  const config = validateConfig({ ...sourceConfig, num_experts: E, num_experts_per_tok: k }, '--top-k');
  const m = configMismatch(sourceConfig, source);
  if (m.missing.length || m.wrongShape.length || m.unexpected.length) throw new DitMoeError(`does not fit its configuration: ${describeMismatch(m)}`, where);

  const rng = makeRng(opts.seed);
  const tensors = new Map<string, StTensor>();
  const report: UpcycleReport = { copied: [], fromExpert0: [], initialised: [] };
  for (const s of paramSpecs(config)) {
    const src = source.get(s.name);
    if (src && sameShape(src.shape, s.shape)) {
      tensors.set(s.name, src);
      report.copied.push(s.name);
    } else if (src) {
      // upcycle.py: "rounting network initialize with norm (0, 0.02)"
      const data = new Float32Array(numel(s.shape));
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
      const dtype = src.dtype === 'F16' || src.dtype === 'BF16' ? src.dtype : 'F32';
      roundTo(dtype, data);
      tensors.set(s.name, { dtype, shape: [...s.shape], data });
      report.initialised.push(s.name);
    } else if (s.name === 'pos_embed') {
      continue; // a source without the fixed table: the result has none either (it is computed on load)
    } else {
      const from = s.name.replace(/\.experts\.\d+\./, '.experts.0.');
      const t = source.get(from);
      if (from === s.name || !t || !sameShape(t.shape, s.shape)) throw new DitMoeError(`has no tensor for '${s.name}'${from !== s.name ? ` nor '${from}' to copy` : ''}`, where);
      tensors.set(s.name, t);
      report.fromExpert0.push([s.name, from]);
    }
  }
  return { config, tensors, report };
}
