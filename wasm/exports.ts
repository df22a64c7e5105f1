/**
 * The kernels module's exports (wasm/assembly/*.ts): what the main thread calls (typed below)
 * and what worker threads may run (wasm/pool.ts).
 */
/** The module's exports (wasm/assembly/*.ts): byte addresses and f32 counts. */
export interface KernelExports {
  heapBase(): number;
  packedASize(M: number, K: number): number;
  packedBSize(N: number, K: number): number;
  packARows(ap: number, a: number, lda: number, M: number, K: number): void;
  packACols(ap: number, a: number, lda: number, M: number, K: number): void;
  packBNK(bp: number, b: number, ldb: number, N: number, K: number): void;
  packBKN(bp: number, b: number, ldb: number, N: number, K: number): void;
  gemmPacked(c: number, ldc: number, ap: number, bp: number, M: number, N: number, K: number, tile: number, overwrite: number): void;
  gemmPackedCols(c: number, ldc: number, ap: number, bp: number, M: number, N: number, K: number, n0: number, n1: number, tile: number, overwrite: number): void;
  gemmNaive(c: number, ldc: number, a: number, lda: number, aTrans: number, b: number, ldb: number, bNK: number, M: number, N: number, K: number): void;
  fillRows(c: number, ldc: number, bias: number, M: number, N: number): void;
  colSumAcc(db: number, dout: number, M: number, N: number): void;
  layerNormForward(out: number, mean: number, rstd: number, x: number, w: number, b: number, M: number, D: number, eps: number): void;
  layerNormBackward(dx: number, dw: number, db: number, dout: number, x: number, w: number, mean: number, rstd: number, M: number, D: number): void;
  modulateForward(out: number, x: number, shift: number, scale: number, B: number, T: number, D: number): void;
  modulateBackward(dx: number, dshift: number, dscale: number, dout: number, x: number, scale: number, B: number, T: number, D: number): void;
  gatedResidualForward(x: number, f: number, gate: number, B: number, T: number, D: number): void;
  gatedResidualBackward(df: number, dgate: number, dout: number, f: number, gate: number, B: number, T: number, D: number): void;
  softmaxRows(s: number, rows: number, n: number, ld: number, scale: number): void;
  attentionHeadForward(out: number, ldo: number, p: number, q: number, k: number, v: number, ld: number, T: number, Dh: number, scale: number, ap: number, bp: number, tile: number): void;
  attentionHeadForwardTiled(out: number, ldo: number, q: number, k: number, v: number, ld: number, T: number, Dh: number, scale: number, R: number, s: number, ap: number, kp: number, vp: number, tile: number): void;
  attentionHeadBackward(dq: number, dk: number, dv: number, ldd: number, dout: number, ldo: number, q: number, k: number, v: number, ld: number, p: number, T: number, Dh: number, scale: number, dp: number, ap: number, bp: number, tile: number): void;
  attentionHeadNaive(out: number, ldo: number, p: number, q: number, k: number, v: number, ld: number, T: number, Dh: number, scale: number): void;
  expArray(out: number, x: number, n: number): void;
  siluForward(out: number, x: number, n: number): void;
  siluBackward(dx: number, dout: number, x: number, n: number): void;
  swigluGate(h: number, g: number, u: number, n: number): void;
  swigluGateBackward(dg: number, du: number, dh: number, g: number, u: number, n: number): void;
  packARowsGather(ap: number, x: number, ldx: number, slots: number, k: number, n: number, K: number): void;
  scatterAddRows(out: number, ldo: number, y: number, slots: number, weight: number, k: number, n: number, D: number): void;
  gatherRows(out: number, x: number, ldx: number, slots: number, k: number, n: number, D: number): void;
  scatterAddRowsBackward(dy: number, dweight: number, dout: number, ldo: number, y: number, slots: number, weight: number, k: number, n: number, D: number): void;
  expertForward(y: number, x: number, slots: number, k: number, n: number, D: number, F: number, bg: number, bu: number, bd: number, g: number, u: number, h: number, ap: number, tile: number): void;
  swigluRowsForward(y: number, g: number, u: number, x: number, n: number, D: number, F: number, bg: number, bu: number, bd: number, h: number, ap: number, tile: number): void;
  conv2dRows(out: number, x: number, bp: number, bias: number, C: number, H: number, W: number, O: number, kh: number, kw: number, stride: number, pT: number, pL: number, Ho: number, Wo: number, p0: number, p1: number, ap: number, cbuf: number, tile: number): void;
  groupNormGroups(out: number, x: number, w: number, b: number, C: number, S: number, G: number, eps: number, silu: number, g0: number, g1: number): void;
  swigluRowsBackward(dx: number, dwg: number, dwu: number, dwd: number, dout: number, x: number, g: number, u: number, n: number, D: number, F: number, bdT: number, bgT: number, buT: number, h: number, dh: number, dg: number, du: number, ap: number, apT: number, bpT: number, tile: number): void;
}
