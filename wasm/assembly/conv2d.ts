/**
 * 2-D convolution on the GEMM (ref/vae/conv2d.ts gives the formula), image to columns done
 * inside the packing: for a block of output positions (conv2dBlockRows) of one image, the packed A
 * (2-row panels, gemm.ts) is filled straight from the image, A[m, k] = x[c, oy·s + i − pT, ox·s + j − pL]
 * (k = (c·kh + i)·kw + j, zero outside), then C[rows, O] = A · B with B the weight [O, C·kh·kw]
 * packed once as 16-column panels (packBNK), and C is written back channel-major with the bias.
 * So no column matrix is ever whole, and the weight panels are shared by every block and thread.
 */
import { gemmPacked } from './gemm';

/**
 * Output positions per block for a K-deep product: as many as keep the packed A block within
 * 512 KiB (half this core's L2), even, between 16 and 256. The GEMM goes over the weight's panels
 * with the block's rows inside, so the block is read once per panel: from L2 when it fits
 * (K = 4608, 512 channels: 28 rows; with a fixed 64 the 1.2 MB block came from L3 every panel).
 */
export function conv2dBlockRows(K: i32): i32 {
  return min(256, max(16, (131072 / max(1, K)) & ~1));
}

// @ts-ignore: decorator
@inline function patchValue(x: usize, H: i32, W: i32, c: i32, iy: i32, ix: i32): f32 {
  return iy >= 0 && iy < H && ix >= 0 && ix < W ? load<f32>(x + ((<usize>c * H + iy) * W + ix) * 4) : <f32>0;
}

/** One 2-row panel of A: the patches of output positions pa and pb (pb < 0: the zero row past an odd count). */
function packPatchPair(dst: usize, x: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, stride: i32, pT: i32, pL: i32, Wo: i32, pa: i32, pb: i32): void {
  const ya = (pa / Wo) * stride - pT;
  const xa = (pa % Wo) * stride - pL;
  const two = pb >= 0;
  const yb = two ? (pb / Wo) * stride - pT : 0;
  const xb = two ? (pb % Wo) * stride - pL : 0;
  const inside = ya >= 0 && ya + kh <= H && xa >= 0 && xa + kw <= W && (!two || (yb >= 0 && yb + kh <= H && xb >= 0 && xb + kw <= W));
  if (inside && two && yb == ya && xb == xa + 1) {
    // the common case (stride 1, neighbours in one row, away from the border): each k is an
    // adjacent pair of the same image row, one 8-byte load, no bounds checks
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < kh; i++) {
        let src = x + ((<usize>c * H + ya + i) * W + xa) * 4;
        for (let j = 0; j < kw; j++) {
          store<u64>(dst, load<u64>(src));
          src += 4;
          dst += 8;
        }
      }
    }
    return;
  }
  if (inside && two) {
    const db = ((<isize>yb - ya) * W + (xb - xa)) * 4;
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < kh; i++) {
        let src = x + ((<usize>c * H + ya + i) * W + xa) * 4;
        for (let j = 0; j < kw; j++) {
          store<f32>(dst, load<f32>(src));
          store<f32>(dst, load<f32>(src + db), 4);
          src += 4;
          dst += 8;
        }
      }
    }
    return;
  }
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        store<f32>(dst, patchValue(x, H, W, c, ya + i, xa + j));
        store<f32>(dst, two ? patchValue(x, H, W, c, yb + i, xb + j) : <f32>0, 4);
        dst += 8;
      }
    }
  }
}

/**
 * Output positions [p0, p1) of one image: x [C, H, W] → out [O, Ho·Wo] (+ bias [O] unless 0).
 * bp: the packed weight; ap (rows·K f32), cbuf (rows·O f32), tile (32 f32): this thread's scratch.
 */
export function conv2dRows(out: usize, x: usize, bp: usize, bias: usize, C: i32, H: i32, W: i32, O: i32, kh: i32, kw: i32, stride: i32, pT: i32, pL: i32, Ho: i32, Wo: i32, p0: i32, p1: i32, rows: i32, ap: usize, cbuf: usize, tile: usize): void {
  const K = C * kh * kw;
  const P = Ho * Wo;
  for (let q0 = p0; q0 < p1; q0 += rows) {
    const mb = min(rows, p1 - q0);
    for (let m = 0; m < mb; m += 2) {
      packPatchPair(ap + (<usize>m * K) * 4, x, C, H, W, kh, kw, stride, pT, pL, Wo, q0 + m, m + 1 < mb ? q0 + m + 1 : -1);
    }
    gemmPacked(cbuf, O, ap, bp, mb, O, K, tile, true);
    for (let o = 0; o < O; o++) {
      const bv: f32 = bias ? load<f32>(bias + (<usize>o) * 4) : <f32>0;
      const orow = out + (<usize>o * P + q0) * 4;
      let src = cbuf + (<usize>o) * 4;
      const step = (<usize>O) * 4;
      for (let r = 0; r < mb; r++) {
        store<f32>(orow + (<usize>r) * 4, load<f32>(src) + bv);
        src += step;
      }
    }
  }
}
