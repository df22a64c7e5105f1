/**
 * The router (official `MoEGate`): every token picks k of E experts.
 *   logits = x · Wᵀ                        x [M, D], W [E, D] → [M, E]   (M = batch·tokens)
 *   scores = softmax(logits)               [M, E]
 *   idx    = the k largest scores per row  [M, k], sorted by expert index (ties: lower index)
 *   weight = scores[idx]                   [M, k], not renormalised unless norm_topk_prob:
 *            weight / (Σ weight + 1e-20)
 * The gradient flows into the selected scores, never through the choice itself.
 */
import type { Kernels } from './kernels.js';
import { softmaxForward, softmaxBackward } from './softmax.js';

export interface RouterOutput {
  logits: Float32Array; // [M, E]
  scores: Float32Array; // [M, E]
  topkIdx: Int32Array; // [M, k]
  topkWeight: Float32Array; // [M, k]
}

/** Indices of the k largest of row[0..E) (ties: lower index first), returned sorted ascending. */
export function topK(row: Float32Array, offset: number, E: number, k: number, out: Int32Array, outOffset: number): void {
  for (let j = 0; j < k; j++) {
    let best = -1;
    let bestVal = -Infinity;
    for (let e = 0; e < E; e++) {
      let taken = false;
      for (let i = 0; i < j; i++) if (out[outOffset + i] === e) taken = true;
      if (taken) continue;
      const v = row[offset + e];
      if (best < 0 || v > bestVal) {
        best = e;
        bestVal = v;
      }
    }
    out[outOffset + j] = best;
  }
  // sort the chosen indices ascending (insertion sort; k is tiny)
  for (let i = 1; i < k; i++) {
    const v = out[outOffset + i];
    let j = i - 1;
    while (j >= 0 && out[outOffset + j] > v) {
      out[outOffset + j + 1] = out[outOffset + j];
      j--;
    }
    out[outOffset + j + 1] = v;
  }
}

export function routerForward(kern: Kernels, x: Float32Array, gateW: Float32Array, M: number, D: number, E: number, k: number, normTopk: boolean): RouterOutput {
  const logits = kern.tensor(M * E);
  kern.linear(logits, x, gateW, null, M, D, E);
  const scores = kern.tensor(M * E);
  softmaxForward(scores, logits, M, E);
  const topkIdx = new Int32Array(M * k);
  const topkWeight = new Float32Array(M * k);
  for (let m = 0; m < M; m++) {
    topK(scores, m * E, E, k, topkIdx, m * k);
    let sum = 0;
    for (let j = 0; j < k; j++) {
      topkWeight[m * k + j] = scores[m * E + topkIdx[m * k + j]];
      sum += topkWeight[m * k + j];
    }
    if (normTopk && k > 1) for (let j = 0; j < k; j++) topkWeight[m * k + j] /= sum + 1e-20;
  }
  return { logits, scores, topkIdx, topkWeight };
}

/**
 * Backward of routerForward (accumulates into dx [M, D] and dGateW [E, D]).
 *   dWeight [M, k] comes from the expert combine; dScoresExtra [M, E] (may be null) from the
 *   balance loss. The weights are gathered scores (renormalised when norm_topk_prob), so
 *   dScores[m, idx[m,j]] += dWeight[m,j] (through the renormalisation when on), then the
 *   softmax and the gate's linear layer are inverted.
 */
export function routerBackward(kern: Kernels, dx: Float32Array | null, dGateW: Float32Array | null, dWeight: Float32Array, dScoresExtra: Float32Array | null, r: RouterOutput, x: Float32Array, gateW: Float32Array, M: number, D: number, E: number, k: number, normTopk: boolean): void {
  const dScores = dScoresExtra ? Float32Array.from(dScoresExtra) : new Float32Array(M * E);
  for (let m = 0; m < M; m++) {
    if (normTopk && k > 1) {
      // w_j = s_j / S with S = Σ s + 1e-20:  ds_j = (dw_j - Σ_i dw_i·w_i) / S
      let S = 1e-20;
      for (let j = 0; j < k; j++) S += r.scores[m * E + r.topkIdx[m * k + j]];
      let dot = 0;
      for (let j = 0; j < k; j++) dot += dWeight[m * k + j] * r.topkWeight[m * k + j];
      for (let j = 0; j < k; j++) dScores[m * E + r.topkIdx[m * k + j]] += (dWeight[m * k + j] - dot) / S;
    } else {
      for (let j = 0; j < k; j++) dScores[m * E + r.topkIdx[m * k + j]] += dWeight[m * k + j];
    }
  }
  const dLogits = kern.tensor(M * E);
  softmaxBackward(dLogits, dScores, r.scores, M, E);
  kern.linearBackward(dx, dGateW, null, dLogits, x, gateW, M, D, E);
}
