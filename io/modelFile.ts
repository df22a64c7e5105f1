/**
 * A model from the bytes of a safetensors file: the format (io/) above the model (ref/), so
 * ref/ reads no file format. Bytes in, no file system.
 */
import { DiTModel, configFromMetadata, loadWeights } from '../ref/model.js';
import type { Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import type { DiTConfig } from '../ref/config.js';
import { parseSafetensors } from './safetensors.js';

/** A model from a safetensors file holding weights and `__metadata__.config`. */
export function loadModelFromSafetensors(bytes: Uint8Array, where = 'model', kernels: Kernels = refKernels, config?: DiTConfig): DiTModel {
  const st = parseSafetensors(bytes, where);
  const cfg = config ?? configFromMetadata(st.metadata, where);
  const { params } = loadWeights(cfg, st.tensors, where);
  return new DiTModel(cfg, params, kernels);
}
