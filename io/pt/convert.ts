/**
 * Checkpoint conversion, bytes to bytes: PyTorch `.pt` ⇄ safetensors. Tensor names, dtypes
 * and values are kept exactly (float16/bfloat16 round-trip bit for bit: widened on read,
 * rounded back on write).
 */
import { parseSafetensors, serializeSafetensors, type StTensor } from '../safetensors.js';
import { readPtCheckpoint, writePtCheckpoint, type PtScalar } from './checkpoint.js';
import { configAttributes } from './stateDictConfig.js';

export interface ConvertOptions {
  /** .pt input: which weights of a training checkpoint (default: `ema` if present, else `model`). */
  weights?: 'model' | 'ema';
  /** .pt output: nest the state dict under this key (e.g. `ema`, as the official `find_model` reads), next to `config`. */
  nestUnder?: string;
  /**
   * Hook for configuration inference (the CLI plugs in ref/inferConfig.ts): given the state
   * dict (and the input's own config, if any), the model's configuration as JSON, or undefined
   * when it cannot tell. Called only when the input carries no config, unless `replaceConfig`.
   */
  inferConfigJson?: (stateDict: Map<string, StTensor>, existingConfig?: string) => string | undefined;
  /** Call the hook even when the input has a config, and write its answer instead (a stated --preset/--config). */
  replaceConfig?: boolean;
}

/** `.pt` bytes → safetensors bytes, with `__metadata__` = {format: 'pt', config?, and the checkpoint's scalars (e.g. step)}. */
export function ptToSafetensors(bytes: Uint8Array, where: string, opts: ConvertOptions = {}): Uint8Array {
  const ck = readPtCheckpoint(bytes, where, { weights: opts.weights });
  const metadata: Record<string, string> = { format: 'pt', ...ck.metadata };
  if (metadata.config === undefined || opts.replaceConfig) {
    const inferred = opts.inferConfigJson?.(ck.stateDict, metadata.config);
    if (inferred !== undefined) metadata.config = inferred;
  }
  return serializeSafetensors(ck.stateDict, metadata);
}

/**
 * safetensors bytes → `.pt` bytes; `__metadata__.config` travels along: with `nestUnder` as a
 * `config` entry next to the weights, in a bare state dict inside its `_metadata`
 * (io/pt/stateDictConfig.ts), where `load_state_dict` does not see it.
 */
export function safetensorsToPt(bytes: Uint8Array, where: string, opts: ConvertOptions = {}): Uint8Array {
  const st = parseSafetensors(bytes, where);
  let config: string | undefined = st.metadata.config;
  if (config === undefined || opts.replaceConfig) config = opts.inferConfigJson?.(st.tensors, config) ?? config;
  if (opts.nestUnder === undefined) return writePtCheckpoint(st.tensors, { attributes: config === undefined ? undefined : configAttributes(config) });
  const scalars: Record<string, PtScalar> = {};
  if (config !== undefined) scalars.config = config;
  return writePtCheckpoint(st.tensors, { nestUnder: opts.nestUnder, scalars });
}
