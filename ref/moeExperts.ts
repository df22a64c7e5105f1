/**
 * The routed experts of the MoE layer, dispatched sparsely and combined (the part of the
 * official `SparseMoeBlock` after the router, in eval):
 *   x [M, D]; idx, weight [M, k] from the router; E SwiGLU experts of width F
 *   out[m, :] = Σ_j weight[m, j] · Expert_{idx[m, j]}(x[m, :])          out [M, D]
 * Dispatch: a counting sort groups the M·k routing slots (slot s = m·k + j) by expert,
 * stable in token order; each expert then runs once as a dense SwiGLU over its gathered
 * rows, and its weighted outputs are scatter-added back to their tokens, expert by expert.
 * The training forward (moe.ts) uses the same three steps and keeps each expert's
 * activations for backward; this kernel keeps nothing.
 */
import { swigluForward } from './swiglu.js';
import type { SwigluWeights } from './swiglu.js';

/** Groups the M·k slots by expert (counting sort, stable in token order): slots [E][n_e]. */
export function dispatchByExpert(topkIdx: Int32Array, E: number): Int32Array[] {
  const counts = new Int32Array(E);
  for (let s = 0; s < topkIdx.length; s++) counts[topkIdx[s]]++;
  const groups = Array.from({ length: E }, (_, e) => new Int32Array(counts[e]));
  const fill = new Int32Array(E);
  for (let s = 0; s < topkIdx.length; s++) {
    const e = topkIdx[s];
    groups[e][fill[e]++] = s;
  }
  return groups;
}

/** Gather: xIn[r, :] = x[slots[r] / k, :]   (xIn [n, D]). */
export function gatherRows(xIn: Float32Array, x: Float32Array, slots: Int32Array, k: number, D: number): void {
  for (let r = 0; r < slots.length; r++) {
    const m = (slots[r] / k) | 0; // slot m·k + j belongs to token m
    xIn.set(x.subarray(m * D, (m + 1) * D), r * D);
  }
}

/**
 * Combine: out[slots[r] / k, :] += weight[slots[r]] · y[r, :]   (y [n, D], out [M, D]);
 * weight null: a plain sum (the backward of the gather).
 */
export function scatterAddRows(out: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array | null, k: number, D: number): void {
  for (let r = 0; r < slots.length; r++) {
    const m = (slots[r] / k) | 0;
    const wt = weight ? weight[slots[r]] : 1;
    for (let d = 0; d < D; d++) out[m * D + d] += wt * y[r * D + d];
  }
}

/**
 * Backward of the weighted combine for one expert's rows (overwrites both, for its slots only):
 *   dy[r, :] = weight[s] · dout[m, :],   dweight[s] = dout[m, :] · y[r, :]     s = slots[r], m = s / k
 * dy, y [n, D]; dout [M, D]; weight, dweight [M·k].
 */
export function scatterAddRowsBackward(dy: Float32Array, dweight: Float32Array, dout: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array, k: number, D: number): void {
  for (let r = 0; r < slots.length; r++) {
    const s = slots[r];
    const m = (s / k) | 0;
    const wt = weight[s];
    let dot = 0;
    for (let d = 0; d < D; d++) {
      dy[r * D + d] = wt * dout[m * D + d];
      dot += dout[m * D + d] * y[r * D + d];
    }
    dweight[s] = dot;
  }
}

/** out [M, D] = the weighted sum of each token's k routed experts (overwrites out). */
export function moeExpertsForward(out: Float32Array, x: Float32Array, topkIdx: Int32Array, topkWeight: Float32Array, experts: SwigluWeights[], M: number, D: number, F: number, k: number): void {
  out.fill(0, 0, M * D);
  const slotsByExpert = dispatchByExpert(topkIdx.subarray(0, M * k), experts.length);
  for (let e = 0; e < experts.length; e++) {
    const slots = slotsByExpert[e];
    const n = slots.length;
    if (n === 0) continue;
    const xIn = new Float32Array(n * D);
    gatherRows(xIn, x, slots, k, D);
    const y = new Float32Array(n * D);
    swigluForward(y, null, null, xIn, experts[e].gate, experts[e].up, experts[e].down, n, D, F);
    scatterAddRows(out, y, slots, topkWeight, k, D);
  }
}
