/**
 * Pictures in (PNG via pngjs, JPEG via jpeg-js) and out for the VAE commands:
 *   readImageFile   RGB [3, H, W] in [−1, 1] (grey is repeated, alpha dropped)
 *   fitImage        resize so the picture covers W×H (a separable triangle filter whose width
 *                   follows the scale, so shrinking averages), then centre-crop to exactly W×H
 * A file that is neither PNG nor JPEG, or does not decode, is a one-line error naming it.
 */
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { DitMoeError } from '../core/errors.js';
import { readBytes } from '../node/files.js';

export interface RgbImage {
  data: Float32Array; // [3, H, W] in [−1, 1]
  H: number;
  W: number;
}

export function decodeImage(bytes: Uint8Array, where: string): RgbImage {
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  const isPng = bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  try {
    if (isPng) {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = png);
      rgba = png.data;
    } else if (isJpeg) {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      ({ width, height } = img);
      rgba = img.data;
    } else throw new DitMoeError('is neither a PNG nor a JPEG image', where);
  } catch (e) {
    if (e instanceof DitMoeError) throw e;
    throw new DitMoeError(`cannot be decoded as ${isPng ? 'PNG' : 'JPEG'} (${(e as Error).message ?? e})`, where);
  }
  if (!(width >= 1 && height >= 1) || rgba.length < width * height * 4) throw new DitMoeError(`decodes to a ${width}×${height} image without pixels`, where);
  const data = new Float32Array(3 * width * height);
  const S = width * height;
  for (let i = 0; i < S; i++) for (let c = 0; c < 3; c++) data[c * S + i] = (rgba[4 * i + c] / 255) * 2 - 1;
  return { data, H: height, W: width };
}

export function readImageFile(file: string): RgbImage {
  return decodeImage(readBytes(file), file);
}

/** One axis: out[j] = Σ_i w(i, j)·in[i], triangle weights of half-width max(1, in/out), normalised. */
function resampleAxis(src: Float32Array, lines: number, n: number, stride: number, lineStride: number, m: number, dst: Float32Array, dStride: number, dLineStride: number): void {
  const scale = n / m;
  const support = Math.max(1, scale);
  for (let j = 0; j < m; j++) {
    const centre = (j + 0.5) * scale - 0.5;
    const lo = Math.max(0, Math.ceil(centre - support));
    const hi = Math.min(n - 1, Math.floor(centre + support));
    const ws: number[] = [];
    let sum = 0;
    for (let i = lo; i <= hi; i++) {
      const w = Math.max(0, 1 - Math.abs(i - centre) / support);
      ws.push(w);
      sum += w;
    }
    if (sum === 0) {
      ws.fill(0);
      ws[Math.min(ws.length - 1, Math.max(0, Math.round(centre) - lo))] = 1;
      sum = 1;
    }
    for (let l = 0; l < lines; l++) {
      let acc = 0;
      for (let i = lo; i <= hi; i++) acc += ws[i - lo] * src[l * lineStride + i * stride];
      dst[l * dLineStride + j * dStride] = acc / sum;
    }
  }
}

/** Resizes `img` to cover W×H keeping its aspect, then crops the centre W×H. */
export function fitImage(img: RgbImage, W: number, H: number): RgbImage {
  const s = Math.max(W / img.W, H / img.H);
  const rw = Math.max(W, Math.round(img.W * s));
  const rh = Math.max(H, Math.round(img.H * s));
  // rows first (each of the 3·H lines along x), then columns
  const tmp = new Float32Array(3 * img.H * rw);
  resampleAxis(img.data, 3 * img.H, img.W, 1, img.W, rw, tmp, 1, rw);
  const res = new Float32Array(3 * rh * rw);
  for (let c = 0; c < 3; c++) resampleAxis(tmp.subarray(c * img.H * rw), rw, img.H, rw, 1, rh, res.subarray(c * rh * rw), rw, 1);
  const x0 = Math.floor((rw - W) / 2);
  const y0 = Math.floor((rh - H) / 2);
  const out = new Float32Array(3 * H * W);
  for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) out.set(res.subarray(c * rh * rw + (y0 + y) * rw + x0, c * rh * rw + (y0 + y) * rw + x0 + W), (c * H + y) * W);
  return { data: out, H, W };
}
