/**
 * The model's configuration, with the official `DiT(...)` keyword names, and the presets of
 * the official `DiT_models` table (depth, width, heads, patch). `validateConfig` turns any
 * JSON-ish object into a checked DiTConfig, naming the field at fault.
 */
import { DitMoeError } from '../core/errors.js';

export interface DiTConfig {
  input_size: number; // latent/image side (H = W)
  patch_size: number;
  in_channels: number;
  hidden_size: number;
  depth: number;
  num_heads: number;
  mlp_ratio: number; // routed expert width = mlp_ratio · hidden_size
  num_classes: number; // + 1 null class for guidance when class_dropout_prob > 0
  num_experts: number;
  num_experts_per_tok: number;
  learn_sigma: boolean; // output 2·in_channels channels (eps and the variance interpolation)
  class_dropout_prob: number;
  n_shared_experts: number; // shared expert width = n_shared_experts · hidden_size (0: none)
  aux_loss_alpha: number; // balance-loss coefficient
  norm_topk_prob: boolean; // renormalise the top-k weights to sum 1
  seq_aux: boolean; // per-sequence balance loss instead of batch-pooled
  frequency_embedding_size: number; // sinusoidal timestep features
  use_flash_attn: boolean; // XL/G attention layout: Wqkv, q/k LayerNorm, out_proj
}

/** Defaults as in the official code (DiT-MoE's `DiT.__init__`, `MoEGate`, `SparseMoeBlock`). */
export const DEFAULT_CONFIG: DiTConfig = {
  input_size: 32,
  patch_size: 2,
  in_channels: 4,
  hidden_size: 1152,
  depth: 28,
  num_heads: 16,
  mlp_ratio: 4,
  num_classes: 1000,
  num_experts: 8,
  num_experts_per_tok: 2,
  learn_sigma: true,
  class_dropout_prob: 0.1,
  n_shared_experts: 2,
  aux_loss_alpha: 0.01,
  norm_topk_prob: false,
  seq_aux: false,
  frequency_embedding_size: 256,
  use_flash_attn: false,
};

export interface Preset {
  depth: number;
  hidden_size: number;
  patch_size: number;
  num_heads: number;
}

/** The official `DiT_models` table. */
export const PRESETS: Record<string, Preset> = {
  'S/2': { depth: 12, hidden_size: 384, patch_size: 2, num_heads: 6 },
  'S/4': { depth: 12, hidden_size: 384, patch_size: 4, num_heads: 6 },
  'S/8': { depth: 12, hidden_size: 384, patch_size: 8, num_heads: 6 },
  'B/2': { depth: 12, hidden_size: 768, patch_size: 2, num_heads: 12 },
  'B/4': { depth: 12, hidden_size: 768, patch_size: 4, num_heads: 12 },
  'B/8': { depth: 12, hidden_size: 768, patch_size: 8, num_heads: 12 },
  'L/2': { depth: 24, hidden_size: 1024, patch_size: 2, num_heads: 16 },
  'L/4': { depth: 24, hidden_size: 1024, patch_size: 4, num_heads: 16 },
  'L/8': { depth: 24, hidden_size: 1024, patch_size: 8, num_heads: 16 },
  'XL/2': { depth: 28, hidden_size: 1152, patch_size: 2, num_heads: 16 },
  'XL/4': { depth: 28, hidden_size: 1152, patch_size: 4, num_heads: 16 },
  'XL/8': { depth: 28, hidden_size: 1152, patch_size: 8, num_heads: 16 },
  'G/2': { depth: 40, hidden_size: 1408, patch_size: 2, num_heads: 16 },
};

/** Accepts "S/2", "DiT-S/2" or "dit-moe-s/2". */
export function presetByName(name: string): Preset {
  const key = name.replace(/^(dit-moe-|dit-)/i, '').toUpperCase();
  const p = PRESETS[key];
  if (!p) throw new DitMoeError(`unknown preset '${name}' (known: ${Object.keys(PRESETS).join(', ')})`, '--preset');
  return p;
}

/** A config for a preset, e.g. presetConfig('S/2', { num_experts: 8 }); the XL and G presets use the flash layout as the official checkpoints do. */
export function presetConfig(name: string, overrides: Partial<DiTConfig> = {}): DiTConfig {
  const p = presetByName(name);
  const flash = /^(XL|G)\//.test(name.replace(/^(dit-moe-|dit-)/i, '').toUpperCase());
  return validateConfig({ ...DEFAULT_CONFIG, use_flash_attn: flash, ...p, ...overrides });
}

/**
 * Upper bounds of the integer fields, so a configuration cannot ask for more than any model
 * could use before a single array is sized from it (a depth of 10⁹ would build 10⁹ blocks of
 * parameter names). Each is far above the paper's largest model (G/2: depth 40, hidden 1408,
 * 16 experts) and below what the structure tables can hold in memory (depth × experts × 3
 * expert tensors ≤ 786k names).
 */
export const CONFIG_LIMITS: Record<(typeof INT_FIELDS)[number], number> = {
  input_size: 1024,
  patch_size: 1024,
  in_channels: 256,
  hidden_size: 32768,
  depth: 256,
  num_heads: 32768,
  num_classes: 1_000_000,
  num_experts: 1024,
  num_experts_per_tok: 1024,
  frequency_embedding_size: 65536,
  n_shared_experts: 256,
};

const INT_FIELDS = ['input_size', 'patch_size', 'in_channels', 'hidden_size', 'depth', 'num_heads', 'num_classes', 'num_experts', 'num_experts_per_tok', 'frequency_embedding_size', 'n_shared_experts'] as const;
const BOOL_FIELDS = ['learn_sigma', 'norm_topk_prob', 'seq_aux', 'use_flash_attn'] as const;
const NUM_FIELDS = ['mlp_ratio', 'class_dropout_prob', 'aux_loss_alpha'] as const;

/**
 * Checks a configuration object (missing fields take the official defaults; unknown fields
 * are an error). `where` names the source (a file, "--config").
 */
export function validateConfig(raw: unknown, where = 'config'): DiTConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DitMoeError('is not a JSON object', where);
  const known = new Set<string>(Object.keys(DEFAULT_CONFIG));
  for (const key of Object.keys(raw)) if (!known.has(key)) throw new DitMoeError(`unknown field '${key}' (known: ${[...known].join(', ')})`, where);
  const c = { ...DEFAULT_CONFIG, ...(raw as Partial<DiTConfig>) };
  const bad = (field: string, want: string) => new DitMoeError(`${field} = ${JSON.stringify((c as unknown as Record<string, unknown>)[field])}, expected ${want}`, where);
  for (const f of INT_FIELDS) if (!Number.isInteger(c[f]) || c[f] < (f === 'n_shared_experts' ? 0 : 1)) throw bad(f, f === 'n_shared_experts' ? 'an integer ≥ 0' : 'a positive integer');
  for (const f of INT_FIELDS) if (c[f] > CONFIG_LIMITS[f]) throw bad(f, `at most ${CONFIG_LIMITS[f]} (a stated limit: see CONFIG_LIMITS)`);
  for (const f of BOOL_FIELDS) if (typeof c[f] !== 'boolean') throw bad(f, 'true or false');
  for (const f of NUM_FIELDS) if (typeof c[f] !== 'number' || !Number.isFinite(c[f]) || c[f] < 0) throw bad(f, 'a finite number ≥ 0');
  if (c.input_size % c.patch_size !== 0) throw bad('patch_size', `a divisor of input_size ${c.input_size}`);
  if (c.hidden_size % c.num_heads !== 0) throw bad('num_heads', `a divisor of hidden_size ${c.hidden_size}`);
  if (c.hidden_size % 4 !== 0) throw bad('hidden_size', 'a multiple of 4 (the 2-D sin-cos position embedding splits it in four)');
  if (c.num_experts_per_tok > c.num_experts) throw bad('num_experts_per_tok', `at most num_experts = ${c.num_experts}`);
  if (c.class_dropout_prob > 1) throw bad('class_dropout_prob', 'a probability in [0, 1]');
  if (c.mlp_ratio > 64) throw bad('mlp_ratio', 'at most 64 (a stated limit)');
  if (!Number.isInteger(c.mlp_ratio * c.hidden_size)) throw bad('mlp_ratio', 'a ratio giving an integer expert width');
  if (c.frequency_embedding_size % 2 !== 0) throw bad('frequency_embedding_size', 'an even number');
  return c;
}

/** Derived sizes used everywhere. */
export function dims(c: DiTConfig) {
  const gridSize = c.input_size / c.patch_size;
  return {
    D: c.hidden_size,
    T: gridSize * gridSize, // tokens per image
    gridSize,
    patchDim: c.in_channels * c.patch_size * c.patch_size, // patch embedding input
    outChannels: c.learn_sigma ? 2 * c.in_channels : c.in_channels,
    headDim: c.hidden_size / c.num_heads,
    expertWidth: Math.round(c.mlp_ratio * c.hidden_size),
    sharedWidth: c.n_shared_experts * c.hidden_size,
    numLabels: c.num_classes + (c.class_dropout_prob > 0 ? 1 : 0), // rows of the label table
  };
}
