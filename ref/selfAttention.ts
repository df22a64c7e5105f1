/**
 * The attention module of a DiT block, in the two layouts of the official checkpoints:
 *   timm (S, B, L):   qkv = x Wqkvᵀ + b [B, T, 3D]; o = core(qkv); y = o Wprojᵀ + b
 *   flash (XL, G):    the same with `Wqkv`/`out_proj`, and LayerNorm(head_dim, eps 1e-6, affine)
 *                     applied to q and k of every head before the core.
 *   x [B, T, D] → y [B, T, D]; core = softmax(q kᵀ/√Dh) v per head (attention.ts)
 */
import { tensorFrom, type Kernels } from './kernels.js';

export interface AttentionWeights {
  qkvW: Float32Array; // [3D, D]
  qkvB: Float32Array; // [3D]
  projW: Float32Array; // [D, D]
  projB: Float32Array; // [D]
  qNorm: { w: Float32Array; b: Float32Array } | null; // flash layout only, [Dh] each
  kNorm: { w: Float32Array; b: Float32Array } | null;
}

export interface AttentionCache {
  qkvRaw: Float32Array; // [B, T, 3D] before the q/k norm (same array as qkv in the timm layout)
  qkv: Float32Array; // [B, T, 3D] what the core saw
  qkStats: { qIn: Float32Array; kIn: Float32Array; qMean: Float32Array; qRstd: Float32Array; kMean: Float32Array; kRstd: Float32Array } | null;
  probs: Float32Array | null; // [B, H, T, T]
  core: Float32Array; // [B, T, D] before the output projection
}

/** Copies head slices of q (part 0) or k (part 1) out of qkv into rows [B·T·H, Dh], or back in. */
function headRows(qkv: Float32Array, rows: Float32Array, part: number, BT: number, H: number, Dh: number, toRows: boolean): void {
  const D = H * Dh;
  for (let m = 0; m < BT; m++)
    for (let h = 0; h < H; h++) {
      const src = m * 3 * D + part * D + h * Dh;
      const dst = (m * H + h) * Dh;
      for (let d = 0; d < Dh; d++) {
        if (toRows) rows[dst + d] = qkv[src + d];
        else qkv[src + d] = rows[dst + d];
      }
    }
}

export function selfAttentionForward(kern: Kernels, out: Float32Array, x: Float32Array, w: AttentionWeights, B: number, T: number, H: number, D: number, keepProbs: boolean): AttentionCache {
  const Dh = D / H;
  const BT = B * T;
  const qkvRaw = kern.tensor(BT * 3 * D);
  kern.linear(qkvRaw, x, w.qkvW, w.qkvB, BT, D, 3 * D);
  let qkv = qkvRaw;
  let qkStats: AttentionCache['qkStats'] = null;
  if (w.qNorm && w.kNorm) {
    qkv = tensorFrom(kern, qkvRaw);
    const R = BT * H;
    const qIn = kern.tensor(R * Dh);
    const kIn = kern.tensor(R * Dh);
    headRows(qkvRaw, qIn, 0, BT, H, Dh, true);
    headRows(qkvRaw, kIn, 1, BT, H, Dh, true);
    const qOut = kern.tensor(R * Dh);
    const kOut = kern.tensor(R * Dh);
    const s = { qIn, kIn, qMean: kern.tensor(R), qRstd: kern.tensor(R), kMean: kern.tensor(R), kRstd: kern.tensor(R) };
    kern.layerNorm(qOut, s.qMean, s.qRstd, qIn, w.qNorm.w, w.qNorm.b, R, Dh, 1e-6);
    kern.layerNorm(kOut, s.kMean, s.kRstd, kIn, w.kNorm.w, w.kNorm.b, R, Dh, 1e-6);
    headRows(qkv, qOut, 0, BT, H, Dh, false);
    headRows(qkv, kOut, 1, BT, H, Dh, false);
    qkStats = s;
  }
  const core = kern.tensor(BT * D);
  const probs = keepProbs ? kern.tensor(B * H * T * T) : null;
  kern.attention(core, probs, qkv, B, T, H, Dh);
  kern.linear(out, core, w.projW, w.projB, BT, D, D);
  return { qkvRaw, qkv, qkStats, probs, core };
}

export interface AttentionGrads {
  qkvW: Float32Array;
  qkvB: Float32Array;
  projW: Float32Array;
  projB: Float32Array;
  qNorm: { w: Float32Array; b: Float32Array } | null;
  kNorm: { w: Float32Array; b: Float32Array } | null;
}

/** Backward of selfAttentionForward (accumulates); needs the forward run with keepProbs. */
export function selfAttentionBackward(kern: Kernels, dx: Float32Array, g: AttentionGrads, dout: Float32Array, x: Float32Array, w: AttentionWeights, cache: AttentionCache, B: number, T: number, H: number, D: number): void {
  const Dh = D / H;
  const BT = B * T;
  if (!cache.probs) throw new Error('selfAttentionBackward needs the attention probabilities (forward with keepProbs)');
  const dcore = kern.tensor(BT * D);
  kern.linearBackward(dcore, g.projW, g.projB, dout, cache.core, w.projW, BT, D, D); // inverts the output projection
  const dqkv = kern.tensor(BT * 3 * D);
  kern.attentionBackward(dqkv, dcore, cache.qkv, cache.probs, B, T, H, Dh); // inverts the core
  let dqkvRaw = dqkv;
  if (cache.qkStats && w.qNorm && w.kNorm && g.qNorm && g.kNorm) {
    // inverts the q/k LayerNorms; v passes through unchanged
    const s = cache.qkStats;
    const R = BT * H;
    dqkvRaw = tensorFrom(kern, dqkv);
    for (const [part, inp, mean, rstd, nw, gw] of [
      [0, s.qIn, s.qMean, s.qRstd, w.qNorm, g.qNorm],
      [1, s.kIn, s.kMean, s.kRstd, w.kNorm, g.kNorm],
    ] as const) {
      const dOut = kern.tensor(R * Dh);
      headRows(dqkv, dOut, part, BT, H, Dh, true);
      const dIn = kern.tensor(R * Dh);
      kern.layerNormBackward(dIn, gw.w, gw.b, dOut, inp, nw.w, mean, rstd, R, Dh);
      headRows(dqkvRaw, dIn, part, BT, H, Dh, false);
    }
  }
  kern.linearBackward(dx, g.qkvW, g.qkvB, dqkvRaw, x, w.qkvW, BT, D, 3 * D); // inverts the qkv projection
}
