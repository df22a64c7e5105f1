/**
 * adaLN modulation (DiT's `modulate`): y = x · (1 + scale) + shift
 *   x [B, T, D]; shift, scale [B, D] (broadcast over tokens) → y [B, T, D]
 */
export function modulateForward(out: Float32Array, x: Float32Array, shift: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * D;
      for (let d = 0; d < D; d++) out[o + d] = x[o + d] * (1 + scale[b * D + d]) + shift[b * D + d];
    }
  }
}

/**
 * Backward of modulateForward (accumulates):
 *   dx += dy·(1 + scale), dscale[b] += Σ_t dy·x, dshift[b] += Σ_t dy
 */
export function modulateBackward(dx: Float32Array, dshift: Float32Array, dscale: Float32Array, dout: Float32Array, x: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * D;
      for (let d = 0; d < D; d++) {
        const g = dout[o + d];
        dx[o + d] += g * (1 + scale[b * D + d]);
        dscale[b * D + d] += g * x[o + d];
        dshift[b * D + d] += g;
      }
    }
  }
}

/**
 * Gated residual (adaLN-Zero): y = x + gate · f   with gate [B, D] broadcast over tokens.
 * Written in place into x.
 */
export function gatedResidualForward(x: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * D;
      for (let d = 0; d < D; d++) x[o + d] += gate[b * D + d] * f[o + d];
    }
  }
}

/** Backward of gatedResidualForward (accumulates; dx passes through unchanged): df += dy·gate, dgate[b] += Σ_t dy·f */
export function gatedResidualBackward(df: Float32Array, dgate: Float32Array, dout: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * D;
      for (let d = 0; d < D; d++) {
        df[o + d] += dout[o + d] * gate[b * D + d];
        dgate[b * D + d] += dout[o + d] * f[o + d];
      }
    }
  }
}
