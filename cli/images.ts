/**
 * Pictures of tensors (PNG via pngjs): a grid of samples, a strip of a denoising trajectory.
 * Pixel-space models (1 or 3 channels, data in [-1, 1]) map -1..1 to 0..255. Latents (other
 * channel counts) are previewed: their first three channels as RGB (one channel: grey),
 * stretched to the range of the whole grid — a picture of the tensor, not a decoded image.
 */
import { PNG } from 'pngjs';

export interface ImageBatch {
  data: Float32Array; // [N, C, H, W]
  N: number;
  C: number;
  H: number;
  W: number;
}

/** RGBA bytes of a grid of `cols` columns, each image upscaled by `scale`, `gap` pixels apart. */
export function gridPng(b: ImageBatch, cols = Math.ceil(Math.sqrt(b.N)), scale = 1, gap = 2): Uint8Array {
  const rows = Math.ceil(b.N / cols);
  const cw = b.W * scale;
  const ch = b.H * scale;
  const width = cols * cw + (cols + 1) * gap;
  const height = rows * ch + (rows + 1) * gap;
  const png = new PNG({ width, height });
  png.data.fill(255);
  const pixel = channelMapper(b);
  for (let n = 0; n < b.N; n++) {
    const ox = gap + (n % cols) * (cw + gap);
    const oy = gap + Math.floor(n / cols) * (ch + gap);
    for (let y = 0; y < ch; y++)
      for (let x = 0; x < cw; x++) {
        const [r, g, bl] = pixel(n, Math.floor(y / scale), Math.floor(x / scale));
        const o = ((oy + y) * width + ox + x) * 4;
        png.data[o] = r;
        png.data[o + 1] = g;
        png.data[o + 2] = bl;
        png.data[o + 3] = 255;
      }
  }
  return new Uint8Array(PNG.sync.write(png));
}

function channelMapper(b: ImageBatch): (n: number, y: number, x: number) => [number, number, number] {
  const { C, H, W, data } = b;
  const pixelSpace = C === 1 || C === 3;
  let lo = -1;
  let hi = 1;
  if (!pixelSpace) {
    lo = Infinity;
    hi = -Infinity;
    for (const v of data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) hi = lo + 1;
  }
  const to8 = (v: number) => Math.max(0, Math.min(255, Math.round(((v - lo) / (hi - lo)) * 255)));
  return (n, y, x) => {
    const at = (c: number) => data[((n * C + c) * H + y) * W + x];
    if (C === 1 || C === 2) {
      const g = to8(at(0));
      return [g, g, g];
    }
    return [to8(at(0)), to8(at(1)), to8(at(2))];
  };
}

/** Concatenates batches of the same image size side by side: column j of the result is batch j. */
export function stripBatch(frames: ImageBatch[], rowsPerFrame: number): ImageBatch {
  const { C, H, W } = frames[0];
  const cols = frames.length;
  const N = rowsPerFrame * cols;
  const data = new Float32Array(N * C * H * W);
  const per = C * H * W;
  for (let r = 0; r < rowsPerFrame; r++) for (let j = 0; j < cols; j++) data.set(frames[j].data.subarray(r * per, (r + 1) * per), (r * cols + j) * per);
  return { data, N, C, H, W };
}
