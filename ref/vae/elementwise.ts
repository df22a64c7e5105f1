/**
 * The elementwise steps between the VAE's kernels, on arrays of any backend (plain loops):
 *   addInto:  a[i] += b[i]                      (residual connections)
 *   relu:     a[i] = max(a[i], 0)                (TAESD)
 *   tanhClamp: a[i] = tanh(a[i] / 3) · 3          (TAESD's decoder input)
 *   channelsLast / channelsFirst: [N, C, S] ↔ [N, S, C]
 */
export function addInto(a: Float32Array, b: Float32Array, n = a.length): void {
  for (let i = 0; i < n; i++) a[i] += b[i];
}

export function relu(a: Float32Array, n = a.length): void {
  for (let i = 0; i < n; i++) if (!(a[i] > 0)) a[i] = a[i] === a[i] ? 0 : a[i]; // NaN stays NaN, as torch
}

export function tanhClamp(out: Float32Array, x: Float32Array, n = x.length): void {
  for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i] / 3) * 3;
}

/** out[n, s, c] = x[n, c, s] */
export function channelsLast(out: Float32Array, x: Float32Array, N: number, C: number, S: number): void {
  for (let n = 0; n < N; n++) {
    const b = n * C * S;
    for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) out[b + s * C + c] = x[b + c * S + s];
  }
}

/** out[n, c, s] = x[n, s, c] */
export function channelsFirst(out: Float32Array, x: Float32Array, N: number, C: number, S: number): void {
  for (let n = 0; n < N; n++) {
    const b = n * C * S;
    for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) out[b + c * S + s] = x[b + s * C + c];
  }
}
