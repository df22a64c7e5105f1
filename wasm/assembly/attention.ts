/**
 * Self-attention core for one head, on the packed GEMM:
 *   q, k, v [T, Dh] (row stride ld: they are slices of the fused qkv [T, 3·H·Dh])
 *   P = softmax(q kᵀ · scale) [T, T], scale = 1/√Dh, stable (row max subtracted)
 *   out[T, Dh] (row stride ldo) = P v
 * The host loops over batch and heads; scratch (S, packed A and B, the edge tile) is the
 * host's: ap ≥ packedASize(T, max(T, Dh)), bp ≥ packedBSize(max(T, Dh), max(T, Dh)).
 */
import { packARows, packACols, packBNK, packBKN, gemmPacked, fillRows } from './gemm';
import { exp4 } from './activations';

/** s[t, :] = softmax(s[t, :] · scale) for each of T rows of length T (in place). */
export function softmaxRows(s: usize, T: i32, scale: f32): void {
  const T4 = T & ~3;
  const sc = f32x4.splat(scale);
  for (let t = 0; t < T; t++) {
    const row = s + (<usize>t * T) * 4;
    let mx4 = f32x4.splat(-Infinity);
    for (let i = 0; i < T4; i += 4) {
      const o = (<usize>i) * 4;
      const v = f32x4.mul(v128.load(row + o), sc);
      v128.store(row + o, v);
      mx4 = f32x4.max(mx4, v);
    }
    let mx: f32 = max(max(f32x4.extract_lane(mx4, 0), f32x4.extract_lane(mx4, 1)), max(f32x4.extract_lane(mx4, 2), f32x4.extract_lane(mx4, 3)));
    for (let i = T4; i < T; i++) {
      const o = (<usize>i) * 4;
      const v = load<f32>(row + o) * scale;
      store<f32>(row + o, v);
      mx = max(mx, v);
    }
    const m4 = f32x4.splat(mx);
    let sum = f64x2.splat(0);
    for (let i = 0; i < T4; i += 4) {
      const o = (<usize>i) * 4;
      const e = exp4(f32x4.sub(v128.load(row + o), m4));
      v128.store(row + o, e);
      sum = f64x2.add(sum, f64x2.promote_low_f32x4(e));
      sum = f64x2.add(sum, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
    }
    let total = f64x2.extract_lane(sum, 0) + f64x2.extract_lane(sum, 1);
    for (let i = T4; i < T; i++) {
      const o = (<usize>i) * 4;
      const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(row + o) - mx)), 0);
      store<f32>(row + o, e);
      total += <f64>e;
    }
    const inv = f32x4.splat(<f32>(1 / total));
    for (let i = 0; i < T4; i += 4) {
      const o = (<usize>i) * 4;
      v128.store(row + o, f32x4.mul(v128.load(row + o), inv));
    }
    const invs = <f32>(1 / total);
    for (let i = T4; i < T; i++) {
      const o = (<usize>i) * 4;
      store<f32>(row + o, load<f32>(row + o) * invs);
    }
  }
}

/** Forward for one head. P goes to `p` ([T, T] contiguous: the probs slice or scratch). */
export function attentionHeadForward(out: usize, ldo: i32, p: usize, q: usize, k: usize, v: usize, ld: i32, T: i32, Dh: i32, scale: f32, ap: usize, bp: usize, tile: usize): void {
  // S = q kᵀ: B given as [N=T, K=Dh], the weight layout
  fillRows(p, T, 0, T, T);
  packARows(ap, q, ld, T, Dh);
  packBNK(bp, k, ld, T, Dh);
  gemmPacked(p, T, ap, bp, T, T, Dh, tile);
  softmaxRows(p, T, scale);
  // out = P v: B = v given row-major [K=T, N=Dh]
  fillRows(out, ldo, 0, T, Dh);
  packARows(ap, p, T, T, T);
  packBKN(bp, v, ld, Dh, T);
  gemmPacked(out, ldo, ap, bp, T, Dh, T, tile);
}

/**
 * Backward for one head (accumulates into dq, dk, dv, row stride ldd), from the saved P:
 *   dv += Pᵀ dout                                  (inverts out = P v)
 *   dP  = dout vᵀ
 *   dS  = P ⊙ (dP - rowsum(P ⊙ dP)) · scale         (inverts the softmax and the scale)
 *   dq += dS k,  dk += dSᵀ q                         (inverts S = q kᵀ)
 * dp: [T, T] scratch.
 */
export function attentionHeadBackward(dq: usize, dk: usize, dv: usize, ldd: i32, dout: usize, ldo: i32, q: usize, k: usize, v: usize, ld: i32, p: usize, T: i32, Dh: i32, scale: f32, dp: usize, ap: usize, bp: usize, tile: usize): void {
  packACols(ap, p, T, T, T);
  packBKN(bp, dout, ldo, Dh, T);
  gemmPacked(dv, ldd, ap, bp, T, Dh, T, tile);

  fillRows(dp, T, 0, T, T);
  packARows(ap, dout, ldo, T, Dh);
  packBNK(bp, v, ld, T, Dh);
  gemmPacked(dp, T, ap, bp, T, T, Dh, tile);
  softmaxBackwardRows(dp, p, T, scale);

  packARows(ap, dp, T, T, T);
  packBKN(bp, k, ld, Dh, T);
  gemmPacked(dq, ldd, ap, bp, T, Dh, T, tile);

  packACols(ap, dp, T, T, T);
  packBKN(bp, q, ld, Dh, T);
  gemmPacked(dk, ldd, ap, bp, T, Dh, T, tile);
}

/** dp[t, s] = p[t, s] · (dp[t, s] - Σ_s' p[t, s'] dp[t, s']) · scale, in place. */
export function softmaxBackwardRows(dp: usize, p: usize, T: i32, scale: f32): void {
  for (let t = 0; t < T; t++) {
    const ro = (<usize>t * T) * 4;
    let dot: f64 = 0;
    for (let s = 0; s < T; s++) dot += <f64>load<f32>(p + ro + (<usize>s) * 4) * <f64>load<f32>(dp + ro + (<usize>s) * 4);
    const d4 = f32x4.splat(<f32>dot);
    const sc = f32x4.splat(scale);
    const T4 = T & ~3;
    for (let s = 0; s < T4; s += 4) {
      const o = ro + (<usize>s) * 4;
      v128.store(dp + o, f32x4.mul(f32x4.mul(v128.load(p + o), f32x4.sub(v128.load(dp + o), d4)), sc));
    }
    for (let s = T4; s < T; s++) {
      const o = ro + (<usize>s) * 4;
      store<f32>(dp + o, load<f32>(p + o) * (load<f32>(dp + o) - <f32>dot) * scale);
    }
  }
}

/** The oracle: one head forward as one loop nest (f64 sums, Math.exp), like the reference. */
export function attentionHeadNaive(out: usize, ldo: i32, p: usize, q: usize, k: usize, v: usize, ld: i32, T: i32, Dh: i32, scale: f64): void {
  for (let t = 0; t < T; t++) {
    const row = p + (<usize>t * T) * 4;
    let mx = -Infinity;
    for (let s = 0; s < T; s++) {
      let dot: f64 = 0;
      for (let d = 0; d < Dh; d++) dot += <f64>load<f32>(q + (<usize>t * ld + d) * 4) * <f64>load<f32>(k + (<usize>s * ld + d) * 4);
      const sv = <f32>(dot * scale);
      store<f32>(row + (<usize>s) * 4, sv);
      if (<f64>sv > mx) mx = sv;
    }
    let sum: f64 = 0;
    for (let s = 0; s < T; s++) {
      const e = <f32>Math.exp(<f64>load<f32>(row + (<usize>s) * 4) - mx);
      store<f32>(row + (<usize>s) * 4, e);
      sum += e;
    }
    for (let s = 0; s < T; s++) store<f32>(row + (<usize>s) * 4, <f32>(<f64>load<f32>(row + (<usize>s) * 4) / sum));
    for (let d = 0; d < Dh; d++) {
      let acc: f64 = 0;
      for (let s = 0; s < T; s++) acc += <f64>load<f32>(row + (<usize>s) * 4) * <f64>load<f32>(v + (<usize>s * ld + d) * 4);
      store<f32>(out + (<usize>t * ldo + d) * 4, <f32>acc);
    }
  }
}
