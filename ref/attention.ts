/**
 * Multi-head self-attention core (timm `Attention` and the flash layout agree on it):
 *   qkv [B, T, 3·H·Dh] viewed as [B, T, 3, H, Dh]
 *   P[b,h] = softmax(q kᵀ / √Dh)   [T, T]
 *   out[b,t,h·Dh + d] = Σ_s P[b,h,t,s] · v[b,s,h,d]   → out [B, T, H·Dh]
 * The projections around it (qkv, proj) are linear layers in `block.ts`.
 */
export function attentionForward(out: Float32Array, probs: Float32Array | null, qkv: Float32Array, B: number, T: number, H: number, Dh: number): void {
  const D = H * Dh;
  const D3 = 3 * D;
  const scale = 1 / Math.sqrt(Dh);
  const row = new Float32Array(T);
  for (let b = 0; b < B; b++) {
    const base = b * T * D3;
    for (let h = 0; h < H; h++) {
      const qo = h * Dh;
      const ko = D + h * Dh;
      const vo = 2 * D + h * Dh;
      for (let t = 0; t < T; t++) {
        // scores of query t against every key, then a stable softmax (max subtracted)
        let max = -Infinity;
        const q = base + t * D3 + qo;
        for (let s = 0; s < T; s++) {
          const k = base + s * D3 + ko;
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += qkv[q + d] * qkv[k + d];
          row[s] = dot * scale;
          if (row[s] > max) max = row[s];
        }
        let sum = 0;
        for (let s = 0; s < T; s++) {
          row[s] = Math.exp(row[s] - max);
          sum += row[s];
        }
        const inv = 1 / sum;
        const o = (b * T + t) * D + h * Dh;
        for (let d = 0; d < Dh; d++) out[o + d] = 0;
        for (let s = 0; s < T; s++) {
          const p = row[s] * inv;
          if (probs) probs[((b * H + h) * T + t) * T + s] = p;
          const v = base + s * D3 + vo;
          for (let d = 0; d < Dh; d++) out[o + d] += p * qkv[v + d];
        }
      }
    }
  }
}

/**
 * Backward of attentionForward (accumulates into dqkv [B, T, 3·H·Dh]):
 *   dv[s]  += Σ_t P[t,s] · dout[t]                         (inverts out = P v)
 *   dP[t,s] = dout[t] · v[s]
 *   dS[t,s] = P[t,s] · (dP[t,s] - Σ_s' P[t,s'] dP[t,s'])    (inverts the softmax)
 *   dq[t]  += Σ_s dS[t,s] · k[s] / √Dh,  dk[s] += Σ_t dS[t,s] · q[t] / √Dh
 */
export function attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, probs: Float32Array, B: number, T: number, H: number, Dh: number): void {
  const D = H * Dh;
  const D3 = 3 * D;
  const scale = 1 / Math.sqrt(Dh);
  const dP = new Float32Array(T);
  for (let b = 0; b < B; b++) {
    const base = b * T * D3;
    for (let h = 0; h < H; h++) {
      const qo = h * Dh;
      const ko = D + h * Dh;
      const vo = 2 * D + h * Dh;
      for (let t = 0; t < T; t++) {
        const po = ((b * H + h) * T + t) * T;
        const go = (b * T + t) * D + h * Dh;
        let dot = 0;
        for (let s = 0; s < T; s++) {
          const v = base + s * D3 + vo;
          let g = 0;
          for (let d = 0; d < Dh; d++) {
            g += dout[go + d] * qkv[v + d];
            dqkv[v + d] += probs[po + s] * dout[go + d];
          }
          dP[s] = g;
          dot += probs[po + s] * g;
        }
        const q = base + t * D3 + qo;
        for (let s = 0; s < T; s++) {
          const dS = probs[po + s] * (dP[s] - dot) * scale;
          if (dS === 0) continue;
          const k = base + s * D3 + ko;
          for (let d = 0; d < Dh; d++) {
            dqkv[q + d] += dS * qkv[k + d];
            dqkv[k + d] += dS * qkv[q + d];
          }
        }
      }
    }
  }
}
