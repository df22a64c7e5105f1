/**
 * The expert-level balance loss (official `MoEGate`, training only), coefficient alpha:
 *   batch-pooled:  P_i = mean over all M tokens of scores[:, i]
 *                  f_i = E · (number of the M·k routing slots that chose i) / (M·k)
 *                  aux = alpha · Σ_i P_i · f_i
 *   per-sequence (seq_aux): the same per sequence b of T tokens, averaged over the B sequences:
 *                  aux = alpha · mean_b Σ_i P_bi · f_bi
 * scores [B·T, E], topkIdx [B·T, k] → a number. It equals alpha when the load is perfectly even.
 * The gradient flows through the mean scores P only; the counts f are constants.
 */
export function balanceLossForward(scores: Float32Array, topkIdx: Int32Array, B: number, T: number, E: number, k: number, alpha: number, seqAux: boolean): number {
  const f = balanceLossCounts(topkIdx, B, T, E, k, seqAux);
  const groups = seqAux ? B : 1;
  const rows = seqAux ? T : B * T;
  let total = 0;
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < E; i++) {
      let P = 0;
      for (let t = 0; t < rows; t++) P += scores[(g * rows + t) * E + i];
      total += (P / rows) * f[g * E + i];
    }
  }
  return (alpha * total) / groups;
}

/** f [groups, E]: E · (slots of the group that chose expert i) / (slots in the group). */
export function balanceLossCounts(topkIdx: Int32Array, B: number, T: number, E: number, k: number, seqAux: boolean): Float32Array {
  const groups = seqAux ? B : 1;
  const rows = seqAux ? T : B * T;
  const f = new Float32Array(groups * E);
  for (let g = 0; g < groups; g++) {
    for (let s = 0; s < rows * k; s++) f[g * E + topkIdx[g * rows * k + s]] += 1;
    for (let i = 0; i < E; i++) f[g * E + i] = (f[g * E + i] * E) / (rows * k);
  }
  return f;
}

/** Backward (accumulates into dScores [B·T, E]): d aux / d scores[t, i] = alpha · f_i / (rows · groups) · daux */
export function balanceLossBackward(dScores: Float32Array, daux: number, topkIdx: Int32Array, B: number, T: number, E: number, k: number, alpha: number, seqAux: boolean): void {
  const f = balanceLossCounts(topkIdx, B, T, E, k, seqAux);
  const groups = seqAux ? B : 1;
  const rows = seqAux ? T : B * T;
  const c = (alpha * daux) / (rows * groups);
  for (let g = 0; g < groups; g++) {
    for (let t = 0; t < rows; t++) {
      const o = (g * rows + t) * E;
      for (let i = 0; i < E; i++) dScores[o + i] += c * f[g * E + i];
    }
  }
}
