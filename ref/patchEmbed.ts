/**
 * Patches in and out.
 *   patchify:   x [N, C, H, W] → [N, T, C·p·p], T = (H/p)·(W/p), features ordered (c, i, j)
 *               (the order of a Conv2d weight [D, C, p, p], so the conv is a matrix product)
 *   patch embed: tokens = patchify(x) · Wᵀ + b,  W [D, C·p·p] (the conv weight flattened) → [N, T, D]
 *   unpatchify: x [N, T, p·p·C'] → [N, C', H, W], features ordered (i, j, c)
 *               (official: reshape (N, h, w, p, p, c), einsum nhwpqc → nchpwq)
 */
import type { Kernels } from './kernels.js';

/** The feature order of a token: (c, i, j) for the patch embedding's input, (i, j, c) for the model's output. */
export type PatchOrder = 'cij' | 'ijc';

/**
 * The permutation between images [N, C, H, W] and tokens [N, T, C·p·p]: map[k] is the pixel
 * index of token element k (token t = r·(W/p) + q of image n; feature (c, i, j) or (i, j, c)).
 * patchify, unpatchify and unpatchify's backward are this one map, read in either direction.
 */
export function patchPermutation(N: number, C: number, H: number, W: number, p: number, order: PatchOrder): Int32Array {
  const gh = H / p;
  const gw = W / p;
  const F = C * p * p;
  const map = new Int32Array(N * C * H * W);
  for (let n = 0; n < N; n++)
    for (let r = 0; r < gh; r++)
      for (let q = 0; q < gw; q++) {
        const o = (n * gh * gw + r * gw + q) * F;
        for (let c = 0; c < C; c++)
          for (let i = 0; i < p; i++)
            for (let j = 0; j < p; j++) {
              const f = order === 'cij' ? (c * p + i) * p + j : (i * p + j) * C + c;
              map[o + f] = ((n * C + c) * H + r * p + i) * W + q * p + j;
            }
      }
  return map;
}

/** Images x [N, C, H, W] → tokens [N, T, C·p·p] (default: (c, i, j), the Conv2d weight's order). */
export function patchify(out: Float32Array, x: Float32Array, N: number, C: number, H: number, W: number, p: number, order: PatchOrder = 'cij'): void {
  const map = patchPermutation(N, C, H, W, p, order);
  for (let k = 0; k < map.length; k++) out[k] = x[map[k]];
}

/** Tokens [N, T, p·p·C] → images [N, C, H, W] (default: (i, j, c), the model's output order). */
export function unpatchify(out: Float32Array, x: Float32Array, N: number, C: number, H: number, W: number, p: number, order: PatchOrder = 'ijc'): void {
  const map = patchPermutation(N, C, H, W, p, order);
  for (let k = 0; k < map.length; k++) out[map[k]] = x[k];
}

/** Backward of unpatchify: a pure permutation, so dx[token] += dimages[pixel]. */
export function unpatchifyBackward(dx: Float32Array, dout: Float32Array, N: number, C: number, H: number, W: number, p: number, order: PatchOrder = 'ijc'): void {
  const map = patchPermutation(N, C, H, W, p, order);
  for (let k = 0; k < map.length; k++) dx[k] += dout[map[k]];
}

/** Patch embedding: x [N, C, H, W] → tokens [N, T, D]; returns the patches [N·T, C·p·p] for backward. */
export function patchEmbedForward(kern: Kernels, out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, N: number, C: number, H: number, W: number, p: number, D: number): Float32Array {
  const T = (H / p) * (W / p);
  const patches = kern.tensor(N * T * C * p * p);
  patchify(patches, x, N, C, H, W, p);
  kern.linear(out, patches, w, b, N * T, C * p * p, D);
  return patches;
}

/** Backward of patchEmbedForward into the weights (the input image needs no gradient). */
export function patchEmbedBackward(kern: Kernels, dw: Float32Array, db: Float32Array, dout: Float32Array, patches: Float32Array, w: Float32Array, M: number, K: number, D: number): void {
  kern.linearBackward(null, dw, db, dout, patches, w, M, K, D);
}
