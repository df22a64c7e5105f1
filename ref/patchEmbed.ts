/**
 * Patches in and out.
 *   patchify:   x [N, C, H, W] → [N, T, C·p·p], T = (H/p)·(W/p), features ordered (c, i, j)
 *               (the order of a Conv2d weight [D, C, p, p], so the conv is a matrix product)
 *   patch embed: tokens = patchify(x) · Wᵀ + b,  W [D, C·p·p] (the conv weight flattened) → [N, T, D]
 *   unpatchify: x [N, T, p·p·C'] → [N, C', H, W], features ordered (i, j, c)
 *               (official: reshape (N, h, w, p, p, c), einsum nhwpqc → nchpwq)
 */
import type { Kernels } from './kernels.js';

export function patchify(out: Float32Array, x: Float32Array, N: number, C: number, H: number, W: number, p: number): void {
  const gh = H / p;
  const gw = W / p;
  const F = C * p * p;
  for (let n = 0; n < N; n++)
    for (let r = 0; r < gh; r++)
      for (let q = 0; q < gw; q++) {
        const o = (n * gh * gw + r * gw + q) * F;
        for (let c = 0; c < C; c++)
          for (let i = 0; i < p; i++)
            for (let j = 0; j < p; j++) out[o + (c * p + i) * p + j] = x[((n * C + c) * H + r * p + i) * W + q * p + j];
      }
}

/** The inverse of patchify: tokens [N, T, C·p·p] (c, i, j order) → images [N, C, H, W]. */
export function unpatchifyCij(out: Float32Array, x: Float32Array, N: number, C: number, H: number, W: number, p: number): void {
  const gh = H / p;
  const gw = W / p;
  const F = C * p * p;
  for (let n = 0; n < N; n++)
    for (let r = 0; r < gh; r++)
      for (let q = 0; q < gw; q++) {
        const o = (n * gh * gw + r * gw + q) * F;
        for (let c = 0; c < C; c++)
          for (let i = 0; i < p; i++)
            for (let j = 0; j < p; j++) out[((n * C + c) * H + r * p + i) * W + q * p + j] = x[o + (c * p + i) * p + j];
      }
}

/** The model's output layout: tokens [N, T, p·p·C] in (i, j, c) order → images [N, C, H, W]. */
export function unpatchify(out: Float32Array, x: Float32Array, N: number, C: number, H: number, W: number, p: number): void {
  const gh = H / p;
  const gw = W / p;
  const F = p * p * C;
  for (let n = 0; n < N; n++)
    for (let r = 0; r < gh; r++)
      for (let q = 0; q < gw; q++) {
        const o = (n * gh * gw + r * gw + q) * F;
        for (let i = 0; i < p; i++)
          for (let j = 0; j < p; j++)
            for (let c = 0; c < C; c++) out[((n * C + c) * H + r * p + i) * W + q * p + j] = x[o + (i * p + j) * C + c];
      }
}

/** Backward of unpatchify: a pure permutation, so dx[token] = dimages[pixel] (accumulates). */
export function unpatchifyBackward(dx: Float32Array, dout: Float32Array, N: number, C: number, H: number, W: number, p: number): void {
  const gh = H / p;
  const gw = W / p;
  const F = p * p * C;
  for (let n = 0; n < N; n++)
    for (let r = 0; r < gh; r++)
      for (let q = 0; q < gw; q++) {
        const o = (n * gh * gw + r * gw + q) * F;
        for (let i = 0; i < p; i++)
          for (let j = 0; j < p; j++)
            for (let c = 0; c < C; c++) dx[o + (i * p + j) * C + c] += dout[((n * C + c) * H + r * p + i) * W + q * p + j];
      }
}

/** Patch embedding: x [N, C, H, W] → tokens [N, T, D]; returns the patches [N·T, C·p·p] for backward. */
export function patchEmbedForward(kern: Kernels, out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, N: number, C: number, H: number, W: number, p: number, D: number): Float32Array {
  const T = (H / p) * (W / p);
  const patches = new Float32Array(N * T * C * p * p);
  patchify(patches, x, N, C, H, W, p);
  kern.linear(out, patches, w, b, N * T, C * p * p, D);
  return patches;
}

/** Backward of patchEmbedForward into the weights (the input image needs no gradient). */
export function patchEmbedBackward(kern: Kernels, dw: Float32Array, db: Float32Array, dout: Float32Array, patches: Float32Array, w: Float32Array, M: number, K: number, D: number): void {
  kern.linearBackward(null, dw, db, dout, patches, w, M, K, D);
}
