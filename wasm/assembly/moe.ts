/**
 * MoE dispatch and combine (ref/moeExperts.ts) on the host's memory, around the packed GEMM:
 *   slots [n] i32: the routing slots s = m·k + j that chose one expert (token m = s / k)
 *   packARowsGather: the packed A (gemm.ts layout) of the rows x[slots[r] / k, :] — the gather
 *                    and the packing in one pass, no gathered copy of x
 *   scatterAddRows:  out[slots[r] / k, :] += weight[slots[r]] · y[r, :]   (y [n, D], out row stride ldo)
 */
import { packRowPair } from './gemm';
import { swigluPackedForward } from './swiglu';

/** Packed A [n, K] of the gathered rows A[r, :] = x[slots[r] / k, :] (x row stride ldx). */
export function packARowsGather(ap: usize, x: usize, ldx: i32, slots: usize, k: i32, n: i32, K: i32): void {
  const rowB = (<usize>ldx) * 4;
  for (let r = 0; r < n; r += 2) {
    const r0 = x + <usize>(load<i32>(slots + (<usize>r) * 4) / k) * rowB;
    const two = r + 1 < n;
    const r1 = two ? x + <usize>(load<i32>(slots + (<usize>r) * 4, 4) / k) * rowB : r0;
    packRowPair(ap + (<usize>r * K) * 4, r0, r1, two, K);
  }
}

/** out[slots[r] / k, :] += weight[slots[r]] · y[r, :], expert rows in order (4 lanes, then the tail). */
export function scatterAddRows(out: usize, ldo: i32, y: usize, slots: usize, weight: usize, k: i32, n: i32, D: i32): void {
  const D4 = D & ~3;
  for (let r = 0; r < n; r++) {
    const s = load<i32>(slots + (<usize>r) * 4);
    const wt = load<f32>(weight + (<usize>s) * 4);
    const w4 = f32x4.splat(wt);
    const dst = out + (<usize>(s / k) * ldo) * 4;
    const src = y + (<usize>r * D) * 4;
    for (let d = 0; d < D4; d += 4) {
      const o = (<usize>d) * 4;
      v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(w4, v128.load(src + o))));
    }
    for (let d = D4; d < D; d++) {
      const o = (<usize>d) * 4;
      store<f32>(dst + o, load<f32>(dst + o) + wt * load<f32>(src + o));
    }
  }
}

/**
 * One routed expert on its gathered rows, whole (so the host can run experts on different
 * threads): A = x[slots[r] / k, :] packed, g = A·Wgᵀ, u = A·Wuᵀ [n, F], h = silu(g) ⊙ u,
 * y = h·Wdᵀ [n, D] (overwritten). bg, bu, bd: the packed weights (gemm.ts B panels);
 * g, u, h [n, F], ap (packedASize(n, max(D, F))) and the 2×16 edge tile: the thread's scratch.
 */
export function expertForward(y: usize, x: usize, slots: usize, k: i32, n: i32, D: i32, F: i32, bg: usize, bu: usize, bd: usize, g: usize, u: usize, h: usize, ap: usize, tile: usize): void {
  packARowsGather(ap, x, D, slots, k, n, D);
  swigluPackedForward(y, ap, n, D, F, bg, bu, bd, g, u, h, tile);
}
