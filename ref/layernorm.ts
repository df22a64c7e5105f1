/**
 * LayerNorm over the last axis, as `nn.LayerNorm(D, eps)`:
 *   y = (x - mean) / sqrt(var + eps) (· w + b when elementwise_affine)
 *   x [M, D] → y [M, D]; mean, rstd [M] are kept for backward. var is the biased variance.
 * The DiT blocks use it without affine (eps 1e-6); the XL/G attention uses it with affine
 * on q and k (over head_dim, eps 1e-6).
 */
export function layerNormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, M: number, D: number, eps: number): void {
  for (let m = 0; m < M; m++) {
    const o = m * D;
    let s = 0;
    for (let i = 0; i < D; i++) s += x[o + i];
    const mu = s / D;
    let v = 0;
    for (let i = 0; i < D; i++) {
      const d = x[o + i] - mu;
      v += d * d;
    }
    const r = 1 / Math.sqrt(v / D + eps);
    mean[m] = mu;
    rstd[m] = r;
    for (let i = 0; i < D; i++) {
      const n = (x[o + i] - mu) * r;
      out[o + i] = w ? n * w[i] + (b ? b[i] : 0) : n;
    }
  }
}

/**
 * Backward of layerNormForward (accumulates). With n = (x - mean)·rstd and g = dout·w:
 *   dw += dout·n, db += dout                             (inverts "n·w + b")
 *   dx += rstd · (g - mean(g) - n · mean(g·n))            (inverts the normalisation)
 */
export function layerNormBackward(dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, M: number, D: number): void {
  for (let m = 0; m < M; m++) {
    const o = m * D;
    const mu = mean[m];
    const r = rstd[m];
    let gMean = 0;
    let gnMean = 0;
    for (let i = 0; i < D; i++) {
      const n = (x[o + i] - mu) * r;
      const g = w ? dout[o + i] * w[i] : dout[o + i];
      gMean += g;
      gnMean += g * n;
      if (dw) dw[i] += dout[o + i] * n;
      if (db) db[i] += dout[o + i];
    }
    gMean /= D;
    gnMean /= D;
    for (let i = 0; i < D; i++) {
      const n = (x[o + i] - mu) * r;
      const g = w ? dout[o + i] * w[i] : dout[o + i];
      dx[o + i] += r * (g - gMean - n * gnMean);
    }
  }
}
