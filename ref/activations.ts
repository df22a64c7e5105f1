/**
 * Elementwise activations.
 *   silu(x) = x · σ(x),  σ(x) = 1 / (1 + e^-x);   silu'(x) = σ(x) · (1 + x · (1 - σ(x)))
 */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function siluGrad(x: number): number {
  const s = 1 / (1 + Math.exp(-x));
  return s * (1 + x * (1 - s));
}

/** out[i] = silu(x[i]) over the whole array. */
export function siluForward(out: Float32Array, x: Float32Array, n = x.length): void {
  for (let i = 0; i < n; i++) out[i] = silu(x[i]);
}

/** dx[i] += dout[i] · silu'(x[i]) */
export function siluBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, n = x.length): void {
  for (let i = 0; i < n; i++) dx[i] += dout[i] * siluGrad(x[i]);
}
