/**
 * Pictures of tensors (PNG via pngjs): a grid of samples, a strip of a denoising trajectory.
 * Colours as render/pixels.ts: pixels in [-1, 1], latents previewed by their first channels.
 */
import { PNG } from 'pngjs';
import { imageColors } from './pixels.js';

export interface ImageBatch {
  data: Float32Array; // [N, C, H, W]
  N: number;
  C: number;
  H: number;
  W: number;
}

/** The pixel size of a grid of N images of H × W in `cols` columns, upscaled by `scale`, `gap` pixels apart. */
export function gridSize(N: number, H: number, W: number, cols = Math.ceil(Math.sqrt(N)), scale = 1, gap = 2): { width: number; height: number } {
  const rows = Math.ceil(N / cols);
  return { width: cols * W * scale + (cols + 1) * gap, height: rows * H * scale + (rows + 1) * gap };
}

/** RGBA bytes of a grid of `cols` columns, each image upscaled by `scale`, `gap` pixels apart. */
export function gridPng(b: ImageBatch, cols = Math.ceil(Math.sqrt(b.N)), scale = 1, gap = 2): Uint8Array {
  const cw = b.W * scale;
  const ch = b.H * scale;
  const { width, height } = gridSize(b.N, b.H, b.W, cols, scale, gap);
  const png = new PNG({ width, height });
  png.data.fill(255);
  const pixel = imageColors(b.data, b.C, b.H, b.W);
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
