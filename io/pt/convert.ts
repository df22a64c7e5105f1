/**
 * Checkpoint conversion, bytes to bytes: PyTorch `.pt` ⇄ safetensors. Tensor names, dtypes
 * and values are kept exactly (float16/bfloat16 round-trip bit for bit: widened on read,
 * rounded back on write).
 */
import { parseSafetensors, serializeSafetensors, type StTensor } from '../safetensors.js';
import { readPtCheckpoint, writePtCheckpoint, type PtScalar } from './checkpoint.js';

export interface ConvertOptions {
  /** .pt input: which weights of a training checkpoint (default: `ema` if present, else `model`). */
  weights?: 'model' | 'ema';
  /** .pt output: nest the state dict under this key (e.g. `ema`, as the official `find_model` reads), next to `config`. */
  nestUnder?: string;
  /**
   * Hook for configuration inference: given the state dict, the model's configuration as
   * JSON, or undefined when it cannot tell. Called only when the input carries no config.
   * (Inference from the tensor shapes is a later step of issue 6; nothing is plugged in yet.)
   */
  inferConfigJson?: (stateDict: Map<string, StTensor>) => string | undefined;
}

/** `.pt` bytes → safetensors bytes, with `__metadata__` = {format: 'pt', config?, and the checkpoint's scalars (e.g. step)}. */
export function ptToSafetensors(bytes: Uint8Array, where: string, opts: ConvertOptions = {}): Uint8Array {
  const ck = readPtCheckpoint(bytes, where, { weights: opts.weights });
  const metadata: Record<string, string> = { format: 'pt', ...ck.metadata };
  if (metadata.config === undefined) {
    const inferred = opts.inferConfigJson?.(ck.stateDict);
    if (inferred !== undefined) metadata.config = inferred;
  }
  return serializeSafetensors(ck.stateDict, metadata);
}

/** safetensors bytes → `.pt` bytes; with `nestUnder`, `__metadata__.config` travels along as a `config` entry. */
export function safetensorsToPt(bytes: Uint8Array, where: string, opts: ConvertOptions = {}): Uint8Array {
  const st = parseSafetensors(bytes, where);
  let config: string | undefined = st.metadata.config;
  if (config === undefined) config = opts.inferConfigJson?.(st.tensors);
  if (opts.nestUnder === undefined) return writePtCheckpoint(st.tensors);
  const scalars: Record<string, PtScalar> = {};
  if (config !== undefined) scalars.config = config;
  return writePtCheckpoint(st.tensors, { nestUnder: opts.nestUnder, scalars });
}
