/**
 * LayerNorm on the wasm backend (formula: ref/layernorm.ts; kernel: wasm/assembly/layernorm.ts):
 * rows are independent and shared by the threads.
 */
import type { BackendHooks } from '../hooks.js';
import { split } from '../parallel.js';

// out[M,D] = (x - mean)·rstd (· w + b)
export function layerNorm(be: BackendHooks, out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, M: number, D: number, eps: number): void {
  if (M === 0) return;
  be.scratch((s) => {
    const px = s.input(x, M * D);
    const pw = w ? s.input(w, D) : 0;
    const pb = b ? s.input(b, D) : 0;
    const po = s.output(out, M * D, 'none');
    const pm = s.output(mean, M, 'none');
    const pr = s.output(rstd, M, 'none');
    // rows are independent: shared by the threads
    split(be, 'layerNormForward', M, 1, 8 * M * D, (lo, hi) => [po + lo * D * 4, pm + lo * 4, pr + lo * 4, px + lo * D * 4, pw, pb, hi - lo, D, eps]);
  });
}

export function layerNormBackward(be: BackendHooks, dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, M: number, D: number): void {
  if (M === 0) return;
  const e = be.exports;
  be.scratch((s) => {
    const pdx = s.output(dx, M * D, 'keep');
    const pdo = s.input(dout, M * D);
    const px = s.input(x, M * D);
    const pm = s.input(mean, M);
    const pr = s.input(rstd, M);
    const pw = w ? s.input(w, D) : 0;
    const pdw = dw ? s.output(dw, D, 'keep') : 0;
    const pdb = db ? s.output(db, D, 'keep') : 0;
    // rows are independent unless dw, db sum over them: then one thread
    if (dw || db) e.layerNormBackward(pdx, pdw, pdb, pdo, px, pw, pm, pr, M, D);
    else split(be, 'layerNormBackward', M, 1, 10 * M * D, (lo, hi) => [pdx + lo * D * 4, 0, 0, pdo + lo * D * 4, px + lo * D * 4, pw, pm + lo * 4, pr + lo * 4, hi - lo, D]);
  });
}
