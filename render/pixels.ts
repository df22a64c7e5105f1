/**
 * Colours of image tensors [N, C, H, W], for every picture we draw. Pixel-space data (1 or 3
 * channels) maps −1..1 to 0..255; other channel counts (latents) are previewed: their first
 * three channels as RGB (fewer than three: the first as grey), stretched to the range of the
 * whole tensor — a picture of the tensor, not a decoded image.
 */
import type { RGB } from './colormap.js';

export function imageColors(data: Float32Array, C: number, H: number, W: number): (n: number, y: number, x: number) => RGB {
  let lo = -1;
  let hi = 1;
  if (C !== 1 && C !== 3) {
    lo = Infinity;
    hi = -Infinity;
    for (const v of data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) hi = lo + 1;
  }
  const to8 = (v: number) => Math.max(0, Math.min(255, Math.round(((v - lo) / (hi - lo)) * 255)));
  const at = (n: number, c: number, y: number, x: number) => data[((n * C + c) * H + y) * W + x];
  return (n, y, x) => {
    if (C < 3) {
      const g = to8(at(n, 0, y, x));
      return [g, g, g];
    }
    return [to8(at(n, 0, y, x)), to8(at(n, 1, y, x)), to8(at(n, 2, y, x))];
  };
}
