/** Shared fixtures of the training tests: a tiny seeded model, a learnable bars data set, arguments. */
import { DiTModel } from '../ref/model.js';
import { validateConfig, type DiTConfig } from '../ref/config.js';
import { DEFAULT_TRAIN_ARGS, type TrainArgs } from '../train/trainer.js';
import { checkDataset, type Dataset } from '../train/data.js';
import { posEmbed2d } from '../ref/posEmbed.js';
import { makeRng } from '../ref/diffusion/rng.js';

export function tinyConfig(over: Partial<DiTConfig> = {}): DiTConfig {
  return validateConfig({ input_size: 8, patch_size: 2, in_channels: 1, hidden_size: 32, depth: 2, num_heads: 2, mlp_ratio: 2, num_classes: 4, num_experts: 4, num_experts_per_tok: 2, learn_sigma: false, n_shared_experts: 1, frequency_embedding_size: 32, ...over });
}

/** A model with small random weights (seeded) and the fixed position embedding. */
export function tinyModel(over: Partial<DiTConfig> = {}, seed = 1): DiTModel {
  const m = new DiTModel(tinyConfig(over));
  const rng = makeRng(seed);
  for (let i = 0; i < m.params.data.length; i++) m.params.data[i] = 0.1 * rng.normal();
  m.params.get('pos_embed').set(posEmbed2d(m.config.hidden_size, m.config.input_size / m.config.patch_size));
  return m;
}

/** N images of 8×8: class k is a bright bar in row 2k (a learnable pattern), values in [−1, 1]. */
export function barsDataset(N = 16): Dataset {
  const images = new Float32Array(N * 64).fill(-1);
  const labels = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    const k = n % 4;
    labels[n] = k;
    for (let w = 0; w < 8; w++) images[n * 64 + 2 * k * 8 + w] = 1;
  }
  return checkDataset({ name: 'bars', images, labels, N, C: 1, H: 8, W: 8, numClasses: 4 }, 'bars');
}

export function args(over: Partial<TrainArgs> = {}): TrainArgs {
  return { ...DEFAULT_TRAIN_ARGS, batch: 8, microBatch: 8, steps: 10, lr: 3e-3, ...over };
}

/** Float32 arrays equal bit for bit (NaN-safe, -0 ≠ 0). */
export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
