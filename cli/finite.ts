/**
 * Weights checked once at load: a NaN or an infinity in a model file is refused, naming the
 * file, the tensor and its first bad element, before it can turn every sample into NaN with
 * exit 0. `--allow-nonfinite` loads such a file anyway (to inspect it).
 */
import { DitMoeError } from '../core/errors.js';
import { indexStr, shapeStr } from '../core/tensor.js';
import type { StTensor } from '../io/safetensors.js';

/** The first non-finite element of a float tensor, or -1. */
function firstNonFinite(t: StTensor): number {
  const d = t.data;
  if (!(d instanceof Float32Array || d instanceof Float64Array)) return -1;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return i;
  return -1;
}

/** Throws (naming `file`, the tensor and the element) unless every float tensor is finite. */
export function checkFiniteTensors(tensors: ReadonlyMap<string, StTensor> | Iterable<[string, StTensor]>, file: string): void {
  for (const [name, t] of tensors) {
    const i = firstNonFinite(t);
    if (i >= 0) throw new DitMoeError(`tensor ${name} ${shapeStr(t.shape)}: element ${indexStr(i, t.shape)} is ${t.data[i]}; weights must be finite (--allow-nonfinite loads them anyway)`, file);
  }
}
