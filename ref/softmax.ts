/**
 * Softmax over the last axis, numerically stable (the row maximum is subtracted):
 *   y[m,i] = exp(x[m,i] - max_j x[m,j]) / Σ_j exp(x[m,j] - max_j x[m,j])
 *   x [M, N] → y [M, N]
 */
export function softmaxForward(out: Float32Array, x: Float32Array, M: number, N: number): void {
  for (let m = 0; m < M; m++) {
    const o = m * N;
    let max = -Infinity;
    for (let i = 0; i < N; i++) if (x[o + i] > max) max = x[o + i];
    let sum = 0;
    for (let i = 0; i < N; i++) {
      const e = Math.exp(x[o + i] - max);
      out[o + i] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let i = 0; i < N; i++) out[o + i] *= inv;
  }
}

/** Backward of softmaxForward (accumulates): dx[m,i] += y[m,i]·(dy[m,i] - Σ_j y[m,j]·dy[m,j]) */
export function softmaxBackward(dx: Float32Array, dout: Float32Array, y: Float32Array, M: number, N: number): void {
  for (let m = 0; m < M; m++) {
    const o = m * N;
    let dot = 0;
    for (let i = 0; i < N; i++) dot += y[o + i] * dout[o + i];
    for (let i = 0; i < N; i++) dx[o + i] += y[o + i] * (dout[o + i] - dot);
  }
}
