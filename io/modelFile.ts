/**
 * A model from the bytes of a model file, whatever its format, without the file system (the
 * explorer page reads dropped files with it; `cli/loadModel.ts` adds files, presets and
 * --config on top). The format is told by the bytes: a zip (`PK`) is a PyTorch checkpoint, else
 * safetensors. The configuration is the file's own (`__metadata__.config`, or a `.pt`'s
 * `config` entry), else inferred from the tensor shapes (`given` fills the fields the shapes leave
 * open, e.g. num_heads of the timm layout); it is checked against the tensors.
 */
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import type { DiTConfig } from '../ref/config.js';
import { DiTModel, loadWeights, configFromMetadata } from '../ref/model.js';
import { inferConfig, checkConfigFits, FORWARD_RELEVANT_DEFAULTS } from '../ref/inferConfig.js';
import { parseSafetensors, type StTensor } from './safetensors.js';
import { readPtCheckpoint } from './pt/checkpoint.js';

const CHECKPOINT_PREFIX = /^(ema|adam_m|adam_v)\./;

/** A safetensors training checkpoint of ours holds plain names (model), ema.*, adam_m.*, adam_v.*: one set of weights. */
export function pickWeights<T = StTensor>(all: Map<string, T>, weights: 'model' | 'ema', file: string): Map<string, T> {
  if (![...all.keys()].some((k) => CHECKPOINT_PREFIX.test(k))) {
    if (weights === 'ema') throw new DitMoeError('has no EMA weights (ema.*); use --weights model', file);
    return all; // a plain state dict
  }
  const tensors = new Map<string, T>();
  if (weights === 'ema') {
    for (const [k, v] of all) if (k.startsWith('ema.')) tensors.set(k.slice(4), v);
    if (tensors.size === 0) throw new DitMoeError('has no EMA weights (ema.*); use --weights model', file);
  } else for (const [k, v] of all) if (!CHECKPOINT_PREFIX.test(k)) tensors.set(k, v);
  return tensors;
}

/** Whether the bytes are a zip archive (a PyTorch checkpoint). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export interface LoadedModelFile {
  model: DiTModel;
  config: DiTConfig;
  metadata: Record<string, string>;
  /** 'safetensors' or 'pt'. */
  format: 'safetensors' | 'pt';
  /** Fields the shapes left open that took the official defaults and change the forward (empty when the file states its configuration). */
  defaulted: (keyof DiTConfig)[];
}

/**
 * The model of a model file's bytes: the weights (a training checkpoint's EMA weights when
 * present, as the official `find_model`, for .pt and for our safetensors checkpoints alike) and the configuration, checked. `where` names the file in errors.
 */
export function loadModelFromBytes(bytes: Uint8Array, where: string, kernels: Kernels, given: Partial<DiTConfig> = {}): LoadedModelFile {
  const format = isZip(bytes) ? 'pt' : 'safetensors';
  let tensors: Map<string, StTensor>;
  let metadata: Record<string, string>;
  if (format === 'pt') ({ stateDict: tensors, metadata } = readPtCheckpoint(bytes, where));
  else {
    const st = parseSafetensors(bytes, where);
    // a training checkpoint of ours: its EMA weights when present (the one default, as the official find_model)
    const hasEma = [...st.tensors.keys()].some((k) => k.startsWith('ema.'));
    tensors = pickWeights(st.tensors, hasEma ? 'ema' : 'model', where);
    metadata = st.metadata;
  }
  let config: DiTConfig;
  let defaulted: (keyof DiTConfig)[] = [];
  if (metadata.config !== undefined) {
    config = configFromMetadata(metadata, where);
    checkConfigFits(config, tensors, where, '__metadata__.config');
  } else {
    const inf = inferConfig(tensors, { where, given });
    config = inf.config;
    defaulted = FORWARD_RELEVANT_DEFAULTS.filter((k) => inf.sources[k] === 'default');
    checkConfigFits(config, tensors, where, 'inferred from the tensor shapes');
  }
  const { params } = loadWeights(config, tensors, where);
  return { model: new DiTModel(config, params, kernels), config, metadata, format, defaulted };
}

/** A model from a safetensors file holding weights and `__metadata__.config`. */
export function loadModelFromSafetensors(bytes: Uint8Array, where = 'model', kernels: Kernels = refKernels, config?: DiTConfig): DiTModel {
  const st = parseSafetensors(bytes, where);
  const cfg = config ?? configFromMetadata(st.metadata, where);
  const { params } = loadWeights(cfg, st.tensors, where);
  return new DiTModel(cfg, params, kernels);
}
