/**
 * One SwiGLU expert whole, on the calling thread (ref/swiglu.ts), so the host can run several
 * experts side by side, one per thread; the steps are those of the host's `swiglu` and
 * `swigluBackward`, which split each product between threads instead.
 *   forward:  g = x·Wgᵀ, u = x·Wuᵀ [n, F]; h = silu(g) ⊙ u; y = h·Wdᵀ [n, D] (g, u, y overwritten)
 *   backward: dh = dy·Wd, dWd += dyᵀ·h; dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g);
 *             dx += dg·Wg + du·Wu, dWg += dgᵀ·x, dWu += duᵀ·x (accumulated)
 * Weights come packed (gemm.ts B panels): bg, bu, bd of Wgᵀ, Wuᵀ, Wdᵀ for the forward; bdT, bgT,
 * buT of Wd, Wg, Wu for the backward. The rest are the thread's scratch.
 */
import { packARows, packACols, packBKN, gemmPacked } from './gemm';
import { swigluGate, swigluGateBackward } from './activations';

/** The forward's products and gate after x's rows are packed into ap (packedASize(n, max(D, F))). */
export function swigluPackedForward(y: usize, ap: usize, n: i32, D: i32, F: i32, bg: usize, bu: usize, bd: usize, g: usize, u: usize, h: usize, tile: usize): void {
  gemmPacked(g, F, ap, bg, n, F, D, tile, true);
  gemmPacked(u, F, ap, bu, n, F, D, tile, true);
  swigluGate(h, g, u, n * F);
  packARows(ap, h, F, n, F);
  gemmPacked(y, D, ap, bd, n, D, F, tile, true);
}

/** y [n, D] = SwiGLU(x [n, D]); g, u [n, F] kept for the backward; h [n, F] and ap scratch. */
export function swigluRowsForward(y: usize, g: usize, u: usize, x: usize, n: i32, D: i32, F: i32, bg: usize, bu: usize, bd: usize, h: usize, ap: usize, tile: usize): void {
  packARows(ap, x, D, n, D);
  swigluPackedForward(y, ap, n, D, F, bg, bu, bd, g, u, h, tile);
}

/**
 * Backward from the saved g, u: accumulates into dx [n, D], dwg, dwu [F, D], dwd [D, F].
 * Scratch: h, dh, dg, du [n, F]; ap packedASize(n, max(D, F)); apT packedASize(max(D, F), n);
 * bpT packedBSize(max(D, F), n); the edge tile.
 */
export function swigluRowsBackward(dx: usize, dwg: usize, dwu: usize, dwd: usize, dout: usize, x: usize, g: usize, u: usize, n: i32, D: i32, F: i32, bdT: usize, bgT: usize, buT: usize, h: usize, dh: usize, dg: usize, du: usize, ap: usize, apT: usize, bpT: usize, tile: usize): void {
  const nF = n * F;
  swigluGate(h, g, u, nF); // h, recomputed
  packARows(ap, dout, D, n, D);
  gemmPacked(dh, F, ap, bdT, n, F, D, tile, true); // dh = dy·Wd
  packACols(apT, dout, D, D, n);
  packBKN(bpT, h, F, F, n);
  gemmPacked(dwd, F, apT, bpT, D, F, n, tile, false); // dWd += dyᵀ·h
  swigluGateBackward(dg, du, dh, g, u, nF);
  packARows(ap, dg, F, n, F);
  gemmPacked(dx, D, ap, bgT, n, D, F, tile, false); // dx += dg·Wg
  packARows(ap, du, F, n, F);
  gemmPacked(dx, D, ap, buT, n, D, F, tile, false); // dx += du·Wu
  packBKN(bpT, x, D, D, n); // B = x [n, D]
  packACols(apT, dg, F, F, n);
  gemmPacked(dwg, D, apT, bpT, F, D, n, tile, false); // dWg += dgᵀ·x
  packACols(apT, du, F, F, n);
  gemmPacked(dwu, D, apT, bpT, F, D, n, tile, false); // dWu += duᵀ·x
}
