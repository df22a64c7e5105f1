/**
 * LayerNorm over the last axis, as `nn.LayerNorm(D, eps)`:
 *   y = (x - mean) · rstd (· w + b when affine),  rstd = 1/√(var + eps), var biased
 *   x [M, D] → y [M, D]; mean, rstd [M] written for backward.
 * Sums and the centring are in f64, as in the reference: with |mean| ≫ std (values near
 * ±1e4 that differ by 1) an f32 centring alone loses more than 1e-5 of the output.
 * LayerNorm is memory bound and a small share of a block, so the scalar f64 loop costs
 * little. w, b are 0 (null) when there is no affine.
 */
export function layerNormForward(out: usize, mean: usize, rstd: usize, x: usize, w: usize, b: usize, M: i32, D: i32, eps: f64): void {
  for (let m = 0; m < M; m++) {
    const row = x + (<usize>m * D) * 4;
    const orow = out + (<usize>m * D) * 4;
    let s: f64 = 0;
    for (let i = 0; i < D; i++) s += <f64>load<f32>(row + (<usize>i) * 4);
    const mu = s / <f64>D;
    let v: f64 = 0;
    for (let i = 0; i < D; i++) {
      const d = <f64>load<f32>(row + (<usize>i) * 4) - mu;
      v += d * d;
    }
    const r = 1 / Math.sqrt(v / <f64>D + eps);
    store<f32>(mean + (<usize>m) * 4, <f32>mu);
    store<f32>(rstd + (<usize>m) * 4, <f32>r);
    if (w) {
      for (let i = 0; i < D; i++) {
        const o = (<usize>i) * 4;
        const n = (<f64>load<f32>(row + o) - mu) * r;
        store<f32>(orow + o, <f32>(n * <f64>load<f32>(w + o) + (b ? <f64>load<f32>(b + o) : 0)));
      }
    } else {
      for (let i = 0; i < D; i++) {
        const o = (<usize>i) * 4;
        store<f32>(orow + o, <f32>((<f64>load<f32>(row + o) - mu) * r));
      }
    }
  }
}

/**
 * Backward of layerNormForward (accumulates). With n = (x - mean)·rstd, g = dout·w:
 *   dw += dout·n, db += dout                          (inverts "n·w + b")
 *   dx += rstd · (g - mean(g) - n · mean(g·n))         (inverts the normalisation)
 */
export function layerNormBackward(dx: usize, dw: usize, db: usize, dout: usize, x: usize, w: usize, mean: usize, rstd: usize, M: i32, D: i32): void {
  for (let m = 0; m < M; m++) {
    const ro = (<usize>m * D) * 4;
    const mu: f64 = load<f32>(mean + (<usize>m) * 4);
    const r: f64 = load<f32>(rstd + (<usize>m) * 4);
    let gMean: f64 = 0;
    let gnMean: f64 = 0;
    for (let i = 0; i < D; i++) {
      const o = (<usize>i) * 4;
      const n = (<f64>load<f32>(x + ro + o) - mu) * r;
      const d: f64 = load<f32>(dout + ro + o);
      const g = w ? d * <f64>load<f32>(w + o) : d;
      gMean += g;
      gnMean += g * n;
      if (dw) store<f32>(dw + o, <f32>(<f64>load<f32>(dw + o) + d * n));
      if (db) store<f32>(db + o, <f32>(<f64>load<f32>(db + o) + d));
    }
    gMean /= <f64>D;
    gnMean /= <f64>D;
    for (let i = 0; i < D; i++) {
      const o = (<usize>i) * 4;
      const n = (<f64>load<f32>(x + ro + o) - mu) * r;
      const d: f64 = load<f32>(dout + ro + o);
      const g = w ? d * <f64>load<f32>(w + o) : d;
      store<f32>(dx + ro + o, <f32>(<f64>load<f32>(dx + ro + o) + r * (g - gMean - n * gnMean)));
    }
  }
}
