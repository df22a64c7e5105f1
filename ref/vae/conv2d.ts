/**
 * 2-D convolution, as `nn.Conv2d` (groups 1, dilation 1) with an explicit, possibly uneven,
 * zero padding (diffusers' Downsample2D pads right and bottom by one, then convolves with
 * stride 2 and no padding):
 *   x [N, C, H, W], w [O, C, kh, kw], b [O] or null  →  out [N, O, Ho, Wo]
 *   Ho = ⌊(H + padTop + padBottom − kh) / stride⌋ + 1,  Wo likewise
 *   out[n,o,y,x] = b[o] + Σ_{c,i,j} w[o,c,i,j] · x[n, c, y·stride + i − padTop, x·stride + j − padLeft]
 *   (x outside [0,H)×[0,W) is 0)
 * Computed as image-to-columns on the GEMM: the patches of a block of output positions are
 * the rows of cols [P, C·kh·kw], and cols · wᵀ (`linearForward`, w read as [O, C·kh·kw]) gives
 * their outputs [P, O], written back channel-major. Positions go in blocks so cols stays small
 * (a 512×512 image with 256 channels would need 2.4 GB of columns at once).
 */
import { DitMoeError } from '../../core/errors.js';
import { linearForward } from '../linear.js';

/** The geometry of one convolution call. */
export interface Conv2dShape {
  N: number;
  C: number;
  H: number;
  W: number;
  /** Output channels. */
  O: number;
  kh: number;
  kw: number;
  stride: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
}

/** A k×k convolution with stride s and the same padding p on every side. */
export function convShape(N: number, C: number, H: number, W: number, O: number, k: number, stride = 1, pad = (k - 1) >> 1): Conv2dShape {
  return { N, C, H, W, O, kh: k, kw: k, stride, padTop: pad, padLeft: pad, padBottom: pad, padRight: pad };
}

/** Output height and width. */
export function convOut(s: Conv2dShape): [number, number] {
  return [Math.floor((s.H + s.padTop + s.padBottom - s.kh) / s.stride) + 1, Math.floor((s.W + s.padLeft + s.padRight - s.kw) / s.stride) + 1];
}

/** Throws unless the geometry is whole, non-negative and gives an output of at least one pixel. */
export function checkConvShape(s: Conv2dShape, where: string): [number, number] {
  const ds = [s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.stride, s.padTop, s.padLeft, s.padBottom, s.padRight];
  if (!ds.every((d) => Number.isInteger(d) && d >= 0) || s.stride < 1 || s.kh < 1 || s.kw < 1) throw new DitMoeError(`bad convolution geometry ${JSON.stringify(s)}`, where);
  const [Ho, Wo] = convOut(s);
  if (Ho < 1 || Wo < 1) throw new DitMoeError(`a ${s.kh}×${s.kw} kernel does not fit the padded ${s.H}×${s.W} input`, where);
  return [Ho, Wo];
}

/** Floats of cols per block: 4 Mi (16 MiB). */
const COLS_BLOCK = 1 << 22;

export function conv2dForward(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, s: Conv2dShape): void {
  const [Ho, Wo] = checkConvShape(s, 'conv2d');
  const { N, C, H, W, O, kh, kw, stride, padTop, padLeft } = s;
  const K = C * kh * kw;
  const P = Ho * Wo;
  const block = Math.max(1, Math.min(P, Math.floor(COLS_BLOCK / Math.max(1, K))));
  const cols = new Float32Array(block * K);
  const y = new Float32Array(block * O);
  for (let n = 0; n < N; n++) {
    const xn = n * C * H * W;
    const on = n * O * P;
    for (let p0 = 0; p0 < P; p0 += block) {
      const pb = Math.min(block, P - p0);
      // image to columns: row r holds the patch of output position p0 + r
      for (let r = 0; r < pb; r++) {
        const oy = Math.floor((p0 + r) / Wo);
        const ox = (p0 + r) % Wo;
        let k = r * K;
        for (let c = 0; c < C; c++) {
          const xc = xn + c * H * W;
          for (let i = 0; i < kh; i++) {
            const iy = oy * stride + i - padTop;
            const inRow = iy >= 0 && iy < H;
            for (let j = 0; j < kw; j++) {
              const ix = ox * stride + j - padLeft;
              cols[k++] = inRow && ix >= 0 && ix < W ? x[xc + iy * W + ix] : 0;
            }
          }
        }
      }
      linearForward(y, cols, w, b, pb, K, O);
      for (let r = 0; r < pb; r++) for (let o = 0; o < O; o++) out[on + o * P + p0 + r] = y[r * O + o];
    }
  }
}
