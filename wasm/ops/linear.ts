/**
 * Linear layer on the wasm backend (formula: ref/linear.ts; kernels: wasm/assembly/gemm.ts):
 * the weight packed once (the backend's cache), x packed per call, the product split by columns.
 */
import type { BackendHooks } from '../hooks.js';
import { gemm, packRows, packCols, packKN } from '../parallel.js';

// out[M,N] = x[M,K]·w[N,K]ᵀ + b[N]
export function linear(be: BackendHooks, out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, M: number, K: number, N: number): void {
  if (M * N === 0) return;
  if (K === 0) {
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) out[m * N + n] = b ? b[n] : 0;
    return;
  }
  const e = be.exports;
  const bp = be.packed(w, N, K, 'nk');
  be.scratch((s) => {
    const px = s.input(x, M * K);
    const pb = b ? s.input(b, N) : 0;
    const pc = s.output(out, M * N, 'none');
    const ap = s.alloc(e.packedASize(M, K));
    if (pb) e.fillRows(pc, N, pb, M, N); // then the product adds to the bias rows
    packRows(be, ap, px, K, M, K);
    gemm(be, pc, N, ap, bp, M, N, K, !pb);
  });
}

// dx[M,K] += dout·w, dw[N,K] += doutᵀ·x, db[N] += Σ_m dout
export function linearBackward(be: BackendHooks, dx: Float32Array | null, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number): void {
  if (M === 0 || N === 0) return;
  const e = be.exports;
  const bpW = dx && K > 0 ? be.packed(w, N, K, 'kn') : 0;
  be.scratch((s) => {
    const pd = s.input(dout, M * N);
    if (dx && K > 0) {
      const pdx = s.output(dx, M * K, 'keep');
      const ap = s.alloc(e.packedASize(M, N));
      packRows(be, ap, pd, N, M, N);
      gemm(be, pdx, K, ap, bpW, M, K, N, false); // dx += dout·w: reduction over N
    }
    if (dw && K > 0) {
      const px = s.input(x, M * K);
      const pdw = s.output(dw, N * K, 'keep');
      const ap = s.alloc(e.packedASize(N, M));
      const bp = s.alloc(e.packedBSize(K, M));
      packCols(be, ap, pd, N, N, M); // A = doutᵀ [N, M]
      packKN(be, bp, px, K, K, M); // B = x [M, K]
      gemm(be, pdw, K, ap, bp, N, K, M, false);
    }
    if (db) {
      const pdb = s.output(db, N, 'keep');
      e.colSumAcc(pdb, pd, M, N);
    }
  });
}
