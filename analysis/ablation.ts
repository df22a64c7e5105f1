/**
 * Ablations of the router, for seeing what an expert does: a model that runs the same weights
 * with some experts switched off per layer and, optionally, another k (experts per token).
 * Switching expert e of layer l off masks its router logit: logits[:, e] = −∞ after the gate's
 * product, so softmax gives it score 0 and top-k never picks it; the tokens go to the others and
 * the remaining scores renormalise among themselves (softmax over the experts left). Done by
 * wrapping the kernels: the gate product of layer l (`Kernels.linear` on that layer's
 * `moe.gate.weight`) is followed by the mask; every other call passes through unchanged, so with
 * nothing off and the model's own k the numbers are the model's, bit for bit.
 */
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import { DiTModel } from '../ref/model.js';

export interface Ablation {
  /** Per layer, the experts switched off (indices into 0..E−1). */
  off: readonly (readonly number[])[];
  /** Experts per token (default: the model's num_experts_per_tok). */
  k?: number;
}

/** The model with the ablation applied (same weights, wrapped kernels); `model` itself is unchanged. */
export function ablatedModel(model: DiTModel, ablation: Ablation): DiTModel {
  const c = model.config;
  const E = c.num_experts;
  const k = ablation.k ?? c.num_experts_per_tok;
  if (ablation.off.length > c.depth) throw new DitMoeError(`names ${ablation.off.length} layers, the model has ${c.depth}`, 'ablation');
  if (!Number.isInteger(k) || k < 1 || k > E) throw new DitMoeError(`k = ${k}, expected an integer from 1 to ${E}`, 'ablation');
  const gates = new Map<ArrayBufferLike, { offset: number; off: number[] }[]>();
  ablation.off.forEach((experts, l) => {
    for (const e of experts) if (!Number.isInteger(e) || e < 0 || e >= E) throw new DitMoeError(`layer ${l}: expert ${e} is not one of 0..${E - 1}`, 'ablation');
    const left = E - new Set(experts).size;
    if (left < k) throw new DitMoeError(`layer ${l}: ${left} expert(s) left on, fewer than k = ${k}`, 'ablation');
    if (!experts.length) return;
    const w = model.params.get(`blocks.${l}.moe.gate.weight`);
    const list = gates.get(w.buffer) ?? [];
    list.push({ offset: w.byteOffset, off: [...new Set(experts)] });
    gates.set(w.buffer, list);
  });
  const base = model.kernels;
  if (gates.size === 0) return k === c.num_experts_per_tok ? model : new DiTModel({ ...c, num_experts_per_tok: k }, model.params, base);
  const linear: Kernels['linear'] = (out, x, w, b, M, K, N) => {
    base.linear(out, x, w, b, M, K, N);
    const masked = gates.get(w.buffer)?.find((g) => g.offset === w.byteOffset);
    if (masked && N === E) for (let m = 0; m < M; m++) for (const e of masked.off) out[m * E + e] = -Infinity;
  };
  const kernels = new Proxy(base, {
    get(target, prop) {
      if (prop === 'linear') return linear;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return new DiTModel({ ...c, num_experts_per_tok: k }, model.params, kernels);
}
