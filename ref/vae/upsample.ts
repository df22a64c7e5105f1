/**
 * Nearest-neighbour upsampling by 2, as `F.interpolate(x, scale_factor=2, mode="nearest")`:
 *   x [N, C, H, W] → out [N, C, 2H, 2W],  out[n,c,y,x] = x[n, c, ⌊y/2⌋, ⌊x/2⌋]
 */
export function upsampleNearest2x(out: Float32Array, x: Float32Array, N: number, C: number, H: number, W: number): void {
  const W2 = 2 * W;
  for (let p = 0; p < N * C; p++) {
    const xi = p * H * W;
    const oi = p * 4 * H * W;
    for (let y = 0; y < H; y++) {
      const row = oi + 2 * y * W2;
      for (let x0 = 0; x0 < W; x0++) {
        const v = x[xi + y * W + x0];
        out[row + 2 * x0] = v;
        out[row + 2 * x0 + 1] = v;
      }
      out.copyWithin(row + W2, row, row + W2);
    }
  }
}
