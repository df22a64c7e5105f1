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

/** out[r, :] = x[slots[r] / k, :] for r < n (x row stride ldx): an expert's rows, gathered. */
export function gatherRows(out: usize, x: usize, ldx: i32, slots: usize, k: i32, n: i32, D: i32): void {
  const rowB = (<usize>D) * 4;
  for (let r = 0; r < n; r++) {
    const m = load<i32>(slots + (<usize>r) * 4) / k;
    memory.copy(out + <usize>r * rowB, x + (<usize>m * ldx) * 4, rowB);
  }
}

/**
 * Backward of scatterAddRows for one expert (both overwritten, dweight at its slots only):
 *   dy[r, :] = weight[s] · dout[m, :],  dweight[s] = Σ_d dout[m, d] · y[r, d]   (s = slots[r], m = s / k)
 * The products and sums of dweight in f64 (as the TypeScript reference), two lanes at a time.
 */
export function scatterAddRowsBackward(dy: usize, dweight: usize, dout: usize, ldo: i32, y: usize, slots: usize, weight: usize, k: i32, n: i32, D: i32): void {
  const D4 = D & ~3;
  for (let r = 0; r < n; r++) {
    const s = load<i32>(slots + (<usize>r) * 4);
    const wt = load<f32>(weight + (<usize>s) * 4);
    const w4 = f32x4.splat(wt);
    const src = dout + (<usize>(s / k) * ldo) * 4;
    const yr = y + (<usize>r * D) * 4;
    const dst = dy + (<usize>r * D) * 4;
    let acc = f64x2.splat(0);
    for (let d = 0; d < D4; d += 4) {
      const o = (<usize>d) * 4;
      const g = v128.load(src + o);
      const v = v128.load(yr + o);
      v128.store(dst + o, f32x4.mul(w4, g));
      acc = f64x2.add(acc, f64x2.mul(f64x2.promote_low_f32x4(g), f64x2.promote_low_f32x4(v)));
      acc = f64x2.add(acc, f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(g, g, 2, 3, 0, 1)), f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1))));
    }
    let dot = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
    for (let d = D4; d < D; d++) {
      const o = (<usize>d) * 4;
      const g = load<f32>(src + o);
      store<f32>(dst + o, wt * g);
      dot += <f64>g * <f64>load<f32>(yr + o);
    }
    store<f32>(dweight + (<usize>s) * 4, <f32>dot);
  }
}

/** out[slots[r] / k, :] += weight[slots[r]] · y[r, :] (weight 0: a plain sum), expert rows in order (4 lanes, then the tail). */
export function scatterAddRows(out: usize, ldo: i32, y: usize, slots: usize, weight: usize, k: i32, n: i32, D: i32): void {
  const D4 = D & ~3;
  for (let r = 0; r < n; r++) {
    const s = load<i32>(slots + (<usize>r) * 4);
    const wt: f32 = weight ? load<f32>(weight + (<usize>s) * 4) : 1;
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
