/**
 * Label embedding (official `LabelEmbedder`): a table of num_classes + 1 rows, the last row
 * being the null class used for classifier-free guidance (and for label dropout in training).
 *   y [N] (integers in [0, num_classes]) → table[y] [N, D]
 */
import { DitMoeError } from '../core/errors.js';

export function labelEmbedForward(out: Float32Array, y: ArrayLike<number>, table: Float32Array, N: number, D: number, rows: number): void {
  for (let n = 0; n < N; n++) {
    const c = y[n];
    if (!Number.isInteger(c) || c < 0 || c >= rows) throw new DitMoeError(`class label ${c} is out of range [0, ${rows - 1}]${rows > 1 ? ` (${rows - 1} is the null class)` : ''}`, `y[${n}]`);
    out.set(table.subarray(c * D, (c + 1) * D), n * D);
  }
}

/** Backward: dtable[y[n]] += dout[n] (scatter-add; repeated labels accumulate). */
export function labelEmbedBackward(dtable: Float32Array, dout: Float32Array, y: ArrayLike<number>, N: number, D: number): void {
  for (let n = 0; n < N; n++) {
    const o = y[n] * D;
    for (let d = 0; d < D; d++) dtable[o + d] += dout[n * D + d];
  }
}

/**
 * Label dropout for guidance training (official `token_drop`): each label becomes the null
 * class with probability p; `uniform` draws from [0, 1).
 */
export function dropLabels(y: ArrayLike<number>, p: number, nullClass: number, uniform: () => number): Int32Array {
  const out = Int32Array.from(y);
  if (p > 0) for (let i = 0; i < out.length; i++) if (uniform() < p) out[i] = nullClass;
  return out;
}
