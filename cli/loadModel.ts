/**
 * `--model FILE` for every command: a safetensors file with `__metadata__.config`, or a
 * PyTorch checkpoint (.pt/.pth) once the reader in io/pt is present; `--config` (a JSON file
 * or a JSON string) or `--preset` state the configuration when the file has none.
 */
import * as fs from 'node:fs';
import { DitMoeError } from '../ref/errors.js';
import { validateConfig, presetConfig, type DiTConfig } from '../ref/config.js';
import { DiTModel, loadWeights, configFromMetadata } from '../ref/model.js';
import type { Kernels } from '../ref/kernels.js';
import type { StTensor } from '../io/safetensors.js';
import { readBytes, readSafetensorsFile } from './files.js';

export interface ModelOptions {
  config?: string; // JSON text or a file holding it
  preset?: string;
  weights?: 'model' | 'ema';
}

export function parseConfigOption(text: string): DiTConfig {
  const isFile = !text.trim().startsWith('{') && fs.existsSync(text);
  const src = isFile ? new TextDecoder().decode(readBytes(text)) : text;
  let obj: unknown;
  try {
    obj = JSON.parse(src);
  } catch (e) {
    throw new DitMoeError(`is neither a JSON object nor a file holding one (${(e as Error).message})`, `--config ${isFile ? text : ''}`.trim());
  }
  return validateConfig(obj, isFile ? text : '--config');
}

/** Reads the tensors and metadata of a model file, whatever its format. */
export async function readModelTensors(file: string, opts: ModelOptions = {}): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string> }> {
  if (/\.(pt|pth|bin|ckpt)$/i.test(file)) {
    let mod: { readPtCheckpoint: (bytes: Uint8Array, where: string, o?: { weights?: 'model' | 'ema' }) => { stateDict: Map<string, StTensor>; metadata?: Record<string, string> } };
    try {
      mod = (await import(String('../io/pt/checkpoint.js'))) as typeof mod;
    } catch {
      throw new DitMoeError('PyTorch checkpoints are not supported by this build', file);
    }
    const ck = mod.readPtCheckpoint(readBytes(file), file, { weights: opts.weights });
    return { tensors: ck.stateDict, metadata: ck.metadata ?? {} };
  }
  return readSafetensorsFile(file);
}

export async function loadModelFile(file: string, kernels: Kernels, opts: ModelOptions = {}): Promise<DiTModel> {
  const { tensors, metadata } = await readModelTensors(file, opts);
  let config: DiTConfig;
  if (opts.config) config = parseConfigOption(opts.config);
  else if (opts.preset) config = presetConfig(opts.preset);
  else config = configFromMetadata(metadata, file);
  const { params } = loadWeights(config, tensors, file);
  return new DiTModel(config, params, kernels);
}
