/**
 * Matrix product on packed operands, 128-bit SIMD (f32x4):
 *   C[M,N] (row stride ldc) += A[M,K] · B[K,N]
 * A is packed per call into 2-row panels, B (usually a weight) once into 16-column
 * k-major panels; the micro-kernel keeps a 2×16 tile of C in 8 f32x4 accumulators and
 * reads one `load32_splat` per row and four 16-byte loads of B per k step.
 * (More accumulators, or an unrolled k loop, spill in V8's 15 usable XMM registers.)
 *
 * Every pointer is a byte address in the host's memory; every size is a count of f32.
 * The module allocates nothing: packed buffers and the 2×16 edge tile are the host's.
 *
 * Packed layouts (zero padded, so the micro-kernel never needs a tail):
 *   A panel  ap[(m/2)·2K + 2k + (m&1)]   = A[m,k]   size 2·⌈M/2⌉·K
 *   B panel  bp[(n/16)·16K + 16k + n%16] = B[k,n]   size 16·⌈N/16⌉·K
 */

/** K block: a 16-column panel of 256 k steps is 16 KiB, it stays in L1 while A streams. */
const KC: i32 = 256;

/** Size in f32 of the packed A for an M×K operand. */
export function packedASize(M: i32, K: i32): i32 {
  return ((M + 1) >> 1) * 2 * K;
}

/** Size in f32 of the packed B for a K×N operand. */
export function packedBSize(N: i32, K: i32): i32 {
  return ((N + 15) >> 4) * 16 * K;
}

/** One 2-row panel of packed A from the rows at r0 and r1 (two false: r1 is the zero row past an odd M). */
// @ts-ignore: decorator
@inline export function packRowPair(dst: usize, r0: usize, r1: usize, two: bool, K: i32): void {
  if (two) {
    for (let k = 0; k < K; k++) {
      store<f32>(dst, load<f32>(r0));
      store<f32>(dst, load<f32>(r1), 4);
      r0 += 4;
      r1 += 4;
      dst += 8;
    }
  } else {
    for (let k = 0; k < K; k++) {
      store<f32>(dst, load<f32>(r0));
      store<f32>(dst, <f32>0, 4);
      r0 += 4;
      dst += 8;
    }
  }
}

/** Pack A[m,k] = a[m·lda + k] (row-major A, e.g. activations x [M,K]). */
export function packARows(ap: usize, a: usize, lda: i32, M: i32, K: i32): void {
  const rowB = (<usize>lda) * 4;
  for (let m = 0; m < M; m += 2) {
    const r0 = a + <usize>m * rowB;
    packRowPair(ap + (<usize>m * K) * 4, r0, r0 + rowB, m + 1 < M, K);
  }
}

/** Pack A[m,k] = a[k·lda + m] (A given transposed, e.g. doutᵀ for the weight gradient). */
export function packACols(ap: usize, a: usize, lda: i32, M: i32, K: i32): void {
  const M2 = M & ~1;
  for (let k = 0; k < K; k++) {
    const src = a + (<usize>k * lda) * 4;
    let dst = ap + (<usize>k) * 8;
    const step = (<usize>K) * 8;
    for (let m = 0; m < M2; m += 2) {
      store<u64>(dst, load<u64>(src + (<usize>m) * 4));
      dst += step;
    }
    if (M & 1) {
      store<f32>(dst, load<f32>(src + (<usize>M2) * 4));
      store<f32>(dst, <f32>0, 4);
    }
  }
}

/** Pack B[k,n] = b[n·ldb + k] (B given as [N,K], the weight layout [out, in]). */
export function packBNK(bp: usize, b: usize, ldb: i32, N: i32, K: i32): void {
  for (let n0 = 0; n0 < N; n0 += 16) {
    const panel = bp + (<usize>n0 * K) * 4;
    for (let j = 0; j < 16; j++) {
      const n = n0 + j;
      let dst = panel + (<usize>j) * 4;
      if (n < N) {
        let src = b + (<usize>n * ldb) * 4;
        for (let k = 0; k < K; k++) {
          store<f32>(dst, load<f32>(src));
          src += 4;
          dst += 64;
        }
      } else {
        for (let k = 0; k < K; k++) {
          store<f32>(dst, <f32>0);
          dst += 64;
        }
      }
    }
  }
}

/** Pack B[k,n] = b[k·ldb + n] (B given row-major [K,N], e.g. x for the weight gradient). */
export function packBKN(bp: usize, b: usize, ldb: i32, N: i32, K: i32): void {
  for (let n0 = 0; n0 < N; n0 += 16) {
    let dst = bp + (<usize>n0 * K) * 4;
    const w = min(16, N - n0);
    for (let k = 0; k < K; k++) {
      const src = b + (<usize>k * ldb + n0) * 4;
      if (w == 16) {
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
        v128.store(dst, v128.load(src, 32), 32);
        v128.store(dst, v128.load(src, 48), 48);
      } else {
        for (let j = 0; j < 16; j++) store<f32>(dst + (<usize>j) * 4, j < w ? load<f32>(src + (<usize>j) * 4) : <f32>0);
      }
      dst += 64;
    }
  }
}

/**
 * The micro-kernel: C[2,16] (row stride ldcB bytes) = (overwrite ? 0 : C) + Ap[2,kc] · Bp[kc,16].
 * 8 accumulators + 2 splats + 4 B vectors = 14 XMM registers. Overwriting never reads C: no
 * wait on a C tile that left the cache (~6% of a product's time when C is large).
 */
// @ts-ignore: decorator
@inline function micro2x16(c: usize, ldcB: usize, a: usize, b: usize, kc: i32, overwrite: bool): void {
  const c1 = c + ldcB;
  let c00 = f32x4.splat(0);
  let c01 = c00;
  let c02 = c00;
  let c03 = c00;
  let c10 = c00;
  let c11 = c00;
  let c12 = c00;
  let c13 = c00;
  if (!overwrite) {
    c00 = v128.load(c);
    c01 = v128.load(c, 16);
    c02 = v128.load(c, 32);
    c03 = v128.load(c, 48);
    c10 = v128.load(c1);
    c11 = v128.load(c1, 16);
    c12 = v128.load(c1, 32);
    c13 = v128.load(c1, 48);
  }
  const aEnd = a + (<usize>kc) * 8;
  while (a < aEnd) {
    const a0 = v128.load32_splat(a);
    const a1 = v128.load32_splat(a, 4);
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    const b2 = v128.load(b, 32);
    const b3 = v128.load(b, 48);
    c00 = f32x4.add(c00, f32x4.mul(a0, b0));
    c01 = f32x4.add(c01, f32x4.mul(a0, b1));
    c02 = f32x4.add(c02, f32x4.mul(a0, b2));
    c03 = f32x4.add(c03, f32x4.mul(a0, b3));
    c10 = f32x4.add(c10, f32x4.mul(a1, b0));
    c11 = f32x4.add(c11, f32x4.mul(a1, b1));
    c12 = f32x4.add(c12, f32x4.mul(a1, b2));
    c13 = f32x4.add(c13, f32x4.mul(a1, b3));
    a += 8;
    b += 64;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c, c02, 32);
  v128.store(c, c03, 48);
  v128.store(c1, c10);
  v128.store(c1, c11, 16);
  v128.store(c1, c12, 32);
  v128.store(c1, c13, 48);
}

/**
 * C[M,N] (row stride ldc) = A·B (overwrite) or += A·B from packed operands, columns [n0, n1)
 * only (n0 a multiple of 16: a worker's share when the columns are split between threads).
 * tile: 32 f32 of scratch for the edges (last odd row, last partial panel).
 */
export function gemmPackedCols(c: usize, ldc: i32, ap: usize, bp: usize, M: i32, N: i32, K: i32, n0: i32, n1: i32, tile: usize, overwrite: bool): void {
  const ldcB = (<usize>ldc) * 4;
  const M2 = M & ~1;
  const nEnd = min(n1, N);
  if (K == 0 && overwrite) {
    for (let m = 0; m < M; m++) memory.fill(c + (<usize>m * ldc + n0) * 4, 0, (<usize>(nEnd - n0)) * 4);
    return;
  }
  // panel by panel, and within a panel K block by K block: the panel's column strip of C stays
  // in L1 across its K blocks (K blocks outermost sent all of C through L2 once per block: 2–6% slower)
  for (let p = n0; p < nEnd; p += 16) {
    const w = min(16, nEnd - p);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = min(KC, K - k0);
      const fresh = overwrite && k0 == 0; // later K blocks add to the first
      const bpan = bp + (<usize>p * K + <usize>k0 * 16) * 4;
      if (w == 16) {
        for (let i = 0; i < M2; i += 2) {
          micro2x16(c + (<usize>i * ldc + p) * 4, ldcB, ap + (<usize>i * K + <usize>k0 * 2) * 4, bpan, kc, fresh);
        }
      } else {
        for (let i = 0; i < M2; i += 2) {
          edgeTile(c + (<usize>i * ldc + p) * 4, ldcB, 2, w, ap + (<usize>i * K + <usize>k0 * 2) * 4, bpan, kc, tile, fresh);
        }
      }
      if (M & 1) {
        edgeTile(c + (<usize>M2 * ldc + p) * 4, ldcB, 1, w, ap + (<usize>M2 * K + <usize>k0 * 2) * 4, bpan, kc, tile, fresh);
      }
    }
  }
}

/** C = A·B (overwrite) or C += A·B over all columns. */
export function gemmPacked(c: usize, ldc: i32, ap: usize, bp: usize, M: i32, N: i32, K: i32, tile: usize, overwrite: bool): void {
  gemmPackedCols(c, ldc, ap, bp, M, N, K, 0, N, tile, overwrite);
}

/** A partial tile (rows < 2 or cols < 16): through the 2×16 scratch tile, then copied back. */
function edgeTile(c: usize, ldcB: usize, rows: i32, cols: i32, a: usize, b: usize, kc: i32, tile: usize, overwrite: bool): void {
  for (let r = 0; r < 2; r++) {
    for (let j = 0; j < 16; j++) {
      const v: f32 = !overwrite && r < rows && j < cols ? load<f32>(c + (<usize>r) * ldcB + (<usize>j) * 4) : <f32>0;
      store<f32>(tile + (<usize>(r * 16 + j)) * 4, v);
    }
  }
  micro2x16(tile, 64, a, b, kc, false);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      store<f32>(c + (<usize>r) * ldcB + (<usize>j) * 4, load<f32>(tile + (<usize>(r * 16 + j)) * 4));
    }
  }
}

/**
 * The oracle, one loop nest: C[m,n] += Σ_k A[m,k]·B[k,n] with
 *   A[m,k] = aTrans ? a[k·lda + m] : a[m·lda + k]
 *   B[k,n] = bNK    ? b[n·ldb + k] : b[k·ldb + n]
 * (sums in f64, like the TypeScript reference).
 */
export function gemmNaive(c: usize, ldc: i32, a: usize, lda: i32, aTrans: bool, b: usize, ldb: i32, bNK: bool, M: i32, N: i32, K: i32): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const co = c + (<usize>m * ldc + n) * 4;
      let s: f64 = <f64>load<f32>(co);
      for (let k = 0; k < K; k++) {
        const av = load<f32>(a + (aTrans ? <usize>k * lda + m : <usize>m * lda + k) * 4);
        const bv = load<f32>(b + (bNK ? <usize>n * ldb + k : <usize>k * ldb + n) * 4);
        s += <f64>av * <f64>bv;
      }
      store<f32>(co, <f32>s);
    }
  }
}

/** C[m, :] = bias (or 0 when bias is 0): the first term of a linear layer's output. */
export function fillRows(c: usize, ldc: i32, bias: usize, M: i32, N: i32): void {
  for (let m = 0; m < M; m++) {
    const row = c + (<usize>m * ldc) * 4;
    if (bias) memory.copy(row, bias, (<usize>N) * 4);
    else memory.fill(row, 0, (<usize>N) * 4);
  }
}

/** db[n] += Σ_m dout[m,n]  (the bias gradient, columns summed, 4 at a time). */
export function colSumAcc(db: usize, dout: usize, M: i32, N: i32): void {
  const N4 = N & ~3;
  for (let m = 0; m < M; m++) {
    const row = dout + (<usize>m * N) * 4;
    for (let n = 0; n < N4; n += 4) {
      const o = (<usize>n) * 4;
      v128.store(db + o, f32x4.add(v128.load(db + o), v128.load(row + o)));
    }
    for (let n = N4; n < N; n++) {
      const o = (<usize>n) * 4;
      store<f32>(db + o, load<f32>(db + o) + load<f32>(row + o));
    }
  }
}
