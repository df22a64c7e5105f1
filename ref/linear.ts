/**
 * Linear layer, as `nn.Linear`: y = x Wᵀ + b.
 *   x [M, K], W [N, K] (PyTorch's [out, in]), b [N] or null  →  y [M, N]
 */

/** out[m,n] = Σ_k x[m,k]·w[n,k] + b[n] */
export function linearForward(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, M: number, K: number, N: number): void {
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    const oo = m * N;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * w[wo + k];
      out[oo + n] = s;
    }
  }
}

/**
 * Backward of linearForward (accumulates):
 *   dx[m,k] += Σ_n dout[m,n]·w[n,k]     (inverts the dot over k)
 *   dw[n,k] += Σ_m dout[m,n]·x[m,k]
 *   db[n]   += Σ_m dout[m,n]            (inverts "+ b[n]")
 */
export function linearBackward(dx: Float32Array | null, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number): void {
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    const oo = m * N;
    for (let n = 0; n < N; n++) {
      const g = dout[oo + n];
      if (g === 0) continue;
      const wo = n * K;
      if (dx) for (let k = 0; k < K; k++) dx[xo + k] += g * w[wo + k];
      if (dw) for (let k = 0; k < K; k++) dw[wo + k] += g * x[xo + k];
      if (db) db[n] += g;
    }
  }
}
