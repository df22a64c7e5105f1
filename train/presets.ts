/**
 * Small DiT-MoE presets for CPU training on 28×28×1 digits (patch 4 → 49 tokens, 10 classes
 * + the null class for guidance). Rectified flow predicts a velocity only (learn_sigma false);
 * the DDPM objective of DiT learns the variance too (learn_sigma true).
 *   mnist-s:  the anchor of issue 4 (hidden 128, depth 4, 4 heads, 8 experts top-2, mlp_ratio 2,
 *             2 shared experts as the official default) — 4.3 M parameters
 *   mnist-xs: hidden 96, depth 3, 4 experts top-2, 1 shared expert — for quick experiments
 *   mnist-tiny: hidden 32, depth 2, 4 experts top-2, patch 7 — for tests (seconds per step on ref)
 */
import { DitMoeError } from '../core/errors.js';
import { validateConfig, type DiTConfig } from '../ref/config.js';

export type Objective = 'flow' | 'ddpm';

const BASE: Partial<DiTConfig> = {
  input_size: 28,
  in_channels: 1,
  num_classes: 10,
  class_dropout_prob: 0.1,
  aux_loss_alpha: 0.01,
  norm_topk_prob: false,
  seq_aux: false,
  frequency_embedding_size: 256,
  use_flash_attn: false,
};

export const TRAIN_PRESETS: Record<string, Partial<DiTConfig>> = {
  'mnist-s': { hidden_size: 128, depth: 4, num_heads: 4, num_experts: 8, num_experts_per_tok: 2, mlp_ratio: 2, patch_size: 4, n_shared_experts: 2 },
  'mnist-xs': { hidden_size: 96, depth: 3, num_heads: 4, num_experts: 4, num_experts_per_tok: 2, mlp_ratio: 2, patch_size: 4, n_shared_experts: 1 },
  'mnist-tiny': { hidden_size: 32, depth: 2, num_heads: 2, num_experts: 4, num_experts_per_tok: 2, mlp_ratio: 2, patch_size: 7, n_shared_experts: 1, frequency_embedding_size: 32 },
};

/** The configuration of a training preset for an objective (learn_sigma follows the objective). */
export function trainPresetConfig(name: string, objective: Objective, overrides: Partial<DiTConfig> = {}): DiTConfig {
  const p = TRAIN_PRESETS[name];
  if (!p) throw new DitMoeError(`unknown training preset '${name}' (known: ${Object.keys(TRAIN_PRESETS).join(', ')}, custom with --config)`, '--preset');
  return validateConfig({ ...BASE, ...p, learn_sigma: objective === 'ddpm', ...overrides }, `preset ${name}`);
}
