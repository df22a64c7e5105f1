/**
 * Self-attention core for one head, on the packed GEMM:
 *   q, k, v [T, Dh] (row stride ld: they are slices of the fused qkv [T, 3·H·Dh])
 *   P = softmax(q kᵀ · scale) [T, T], scale = 1/√Dh, stable (row max subtracted)
 *   out[T, Dh] (row stride ldo) = P v
 * The host loops over batch and heads; scratch (S, packed A and B, the edge tile) is the
 * host's. Two forwards, the same numbers:
 *  - attentionHeadForward with p ≠ 0 writes the whole P (training keeps it for the backward):
 *    ap ≥ packedASize(T, max(T, Dh)), bp ≥ packedBSize(max(T, Dh), max(T, Dh));
 *  - attentionHeadForwardTiled (eval, P not wanted) never holds more than R rows of P: scratch O(R·T + T·Dh) instead of O(T²), see its comment.
 */
import { packARows, packACols, packBNK, packBKN, gemmPacked } from './gemm';
import { exp4 } from './activations';

/** b if a < b, else a: the scalar f32x4.pmax (one instruction; a NaN b is skipped, like the reference's `if (s > max)`). */
// @ts-ignore: decorator
@inline function pmax1(a: f32, b: f32): f32 {
  return a < b ? b : a;
}

/**
 * s[t, :n] = softmax(s[t, :n] · scale) for each of `rows` rows of length n, row stride ld
 * (in place; stable: the row max is subtracted before exp, the sum is in f64). The running
 * max is pmax, not max: wasm's NaN-propagating max is a six-instruction sequence on x64 and,
 * on the loop-carried chain, made this pass ~6× slower.
 */
export function softmaxRows(s: usize, rows: i32, n: i32, ld: i32, scale: f32): void {
  const n4 = n & ~3;
  const sc = f32x4.splat(scale);
  for (let t = 0; t < rows; t++) {
    const row = s + (<usize>t * ld) * 4;
    let mx4 = f32x4.splat(-Infinity);
    for (let i = 0; i < n4; i += 4) {
      const o = (<usize>i) * 4;
      const v = f32x4.mul(v128.load(row + o), sc);
      v128.store(row + o, v);
      mx4 = f32x4.pmax(mx4, v);
    }
    let mx = pmax1(pmax1(f32x4.extract_lane(mx4, 0), f32x4.extract_lane(mx4, 1)), pmax1(f32x4.extract_lane(mx4, 2), f32x4.extract_lane(mx4, 3)));
    for (let i = n4; i < n; i++) {
      const o = (<usize>i) * 4;
      const v = load<f32>(row + o) * scale;
      store<f32>(row + o, v);
      mx = pmax1(mx, v);
    }
    const m4 = f32x4.splat(mx);
    let sum = f64x2.splat(0);
    for (let i = 0; i < n4; i += 4) {
      const o = (<usize>i) * 4;
      const e = exp4(f32x4.sub(v128.load(row + o), m4));
      v128.store(row + o, e);
      sum = f64x2.add(sum, f64x2.promote_low_f32x4(e));
      sum = f64x2.add(sum, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
    }
    let total = f64x2.extract_lane(sum, 0) + f64x2.extract_lane(sum, 1);
    for (let i = n4; i < n; i++) {
      const o = (<usize>i) * 4;
      const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(row + o) - mx)), 0);
      store<f32>(row + o, e);
      total += <f64>e;
    }
    const inv = f32x4.splat(<f32>(1 / total));
    for (let i = 0; i < n4; i += 4) {
      const o = (<usize>i) * 4;
      v128.store(row + o, f32x4.mul(v128.load(row + o), inv));
    }
    const invs = <f32>(1 / total);
    for (let i = n4; i < n; i++) {
      const o = (<usize>i) * 4;
      store<f32>(row + o, load<f32>(row + o) * invs);
    }
  }
}

/** Forward for one head, P written to `p` ([T, T] contiguous: the probs slice, kept for backward). */
export function attentionHeadForward(out: usize, ldo: i32, p: usize, q: usize, k: usize, v: usize, ld: i32, T: i32, Dh: i32, scale: f32, ap: usize, bp: usize, tile: usize): void {
  // S = q kᵀ: B given as [N=T, K=Dh], the weight layout
  packARows(ap, q, ld, T, Dh);
  packBNK(bp, k, ld, T, Dh);
  gemmPacked(p, T, ap, bp, T, T, Dh, tile, true);
  softmaxRows(p, T, T, T, scale);
  // out = P v: B = v given row-major [K=T, N=Dh]
  packARows(ap, p, T, T, T);
  packBKN(bp, v, ld, Dh, T);
  gemmPacked(out, ldo, ap, bp, T, Dh, T, tile, true);
}

/**
 * Forward for one head without P (eval), fused per block of R query rows:
 *   Kp = pack(kᵀ) as B [K=Dh, N=T] (packBNK),  Vp = pack(v) as B [K=T, N=Dh] (packBKN), once
 *   for r0 = 0, R, 2R, … < T, rows = min(R, T - r0):
 *     S    = q[r0 : r0+rows, :] · kᵀ                  [rows, T]  (gemmPacked, overwriting the tile)
 *     P    = softmax(S · scale) row by row             [rows, T]  (softmaxRows: max subtracted)
 *     out[r0 : r0+rows, :] = P · v                     [rows, Dh] (written straight into out)
 * The same products, the same order of summation and the same softmax as attentionHeadForward,
 * so out is the same to the last bit; only R rows of P exist at a time.
 * Scratch (all the host's), O(R·T + T·Dh) instead of O(T²): s ≥ R·T f32 (the S/P tile,
 * R·T·4 bytes, meant to stay in L1), ap ≥ packedASize(R, max(T, Dh)), kp ≥ packedBSize(T, Dh),
 * vp ≥ packedBSize(Dh, T), tile 32 (the GEMM's edge tile).
 */
export function attentionHeadForwardTiled(out: usize, ldo: i32, q: usize, k: usize, v: usize, ld: i32, T: i32, Dh: i32, scale: f32, R: i32, s: usize, ap: usize, kp: usize, vp: usize, tile: usize): void {
  if (R < 1) R = T;
  packBNK(kp, k, ld, T, Dh);
  packBKN(vp, v, ld, Dh, T);
  for (let r0 = 0; r0 < T; r0 += R) {
    const rows = min(R, T - r0);
    const o = out + (<usize>r0 * ldo) * 4;
    packARows(ap, q + (<usize>r0 * ld) * 4, ld, rows, Dh);
    gemmPacked(s, T, ap, kp, rows, T, Dh, tile, true);
    softmaxRows(s, rows, T, T, scale);
    packARows(ap, s, T, rows, T);
    gemmPacked(o, ldo, ap, vp, rows, Dh, T, tile, true);
  }
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
  gemmPacked(dv, ldd, ap, bp, T, Dh, T, tile, false);

  packARows(ap, dout, ldo, T, Dh);
  packBNK(bp, v, ld, T, Dh);
  gemmPacked(dp, T, ap, bp, T, T, Dh, tile, true);
  softmaxBackwardRows(dp, p, T, scale);

  packARows(ap, dp, T, T, T);
  packBKN(bp, k, ld, Dh, T);
  gemmPacked(dq, ldd, ap, bp, T, Dh, T, tile, false);

  packACols(ap, dp, T, T, T);
  packBKN(bp, q, ld, Dh, T);
  gemmPacked(dk, ldd, ap, bp, T, Dh, T, tile, false);
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

/** The oracle of both forwards: one head as one loop nest (f64 sums, Math.exp), like the reference; P goes to p [T, T]. */
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
