/**
 * Parameter and compute accounting for any configuration (the paper's Table 1):
 *   total       = every tensor of the state_dict (pos_embed included, as model.parameters())
 *   activated   = total − (E − k) routed experts per block: the parameters one token uses
 *   MACs/image  = the multiply-accumulates of every linear layer for one image, with k
 *                 routed experts active per token (adaLN, timestep MLP and the final layer
 *                 included); the attention products q·kᵀ and P·v are reported apart.
 */
import type { DiTConfig } from './config.js';
import { dims } from './config.js';
import { paramSpecs } from './params.js';
import { numel } from '../core/tensor.js';

export interface Accounting {
  totalParams: number;
  activatedParams: number;
  linearMacs: number; // per image
  attentionMacs: number; // per image: q·kᵀ and P·v
}

export function accounting(c: DiTConfig): Accounting {
  const d = dims(c);
  const { D, T } = d;
  const totalParams = paramSpecs(c).reduce((s, p) => s + numel(p.shape), 0);
  const expertParams = 3 * D * d.expertWidth;
  const activatedParams = totalParams - c.depth * (c.num_experts - c.num_experts_per_tok) * expertParams;
  const P = c.patch_size * c.patch_size * d.outChannels;
  const perTokenBlock = 3 * D * D + D * D + D * c.num_experts + c.num_experts_per_tok * expertParams + 3 * D * d.sharedWidth;
  const perImageBlock = 6 * D * D; // adaLN modulation
  const linearMacs =
    T * d.patchDim * D + // patch embedding
    c.frequency_embedding_size * D + D * D + // timestep MLP
    c.depth * (T * perTokenBlock + perImageBlock) +
    2 * D * D + T * D * P; // final layer
  const attentionMacs = c.depth * 2 * T * T * D;
  return { totalParams, activatedParams, linearMacs, attentionMacs };
}

/** "199M", "4.2B": three significant figures or so, rounded. */
export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 1 : 2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
