/**
 * SwiGLU expert (the official `MoeMLP`, no biases):
 *   y = down( silu(gate(x)) ⊙ up(x) )
 *   x [M, D]; Wg, Wu [F, D]; Wd [D, F]  →  y [M, D]
 * Routed experts have F = mlp_ratio·D; the shared experts are one SwiGLU of F = n_shared·D.
 * (The official code splits the F axis in two slices, `pretraining_tp = 2`: the same sum.)
 */
import { linearForward, linearBackward } from './linear.js';
import { silu, siluGrad } from './activations.js';

/** One expert's three weights. */
export interface SwigluWeights {
  gate: Float32Array; // [F, D]
  up: Float32Array; // [F, D]
  down: Float32Array; // [D, F]
}

export function swigluForward(out: Float32Array, gate: Float32Array | null, up: Float32Array | null, x: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
  const g = gate ?? new Float32Array(M * F);
  const u = up ?? new Float32Array(M * F);
  linearForward(g, x, wg, null, M, D, F); // g = x Wgᵀ
  linearForward(u, x, wu, null, M, D, F); // u = x Wuᵀ
  const h = new Float32Array(M * F);
  for (let i = 0; i < M * F; i++) h[i] = silu(g[i]) * u[i]; // h = silu(g) ⊙ u
  linearForward(out, h, wd, null, M, F, D); // y = h Wdᵀ
}

/**
 * Backward of swigluForward (accumulates), from the saved pre-activations g, u:
 *   dh = dy Wd, dWd += dyᵀ h                 (inverts y = h Wdᵀ)
 *   dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g) (inverts h = silu(g) ⊙ u)
 *   dx += dg Wg + du Wu, dWg += dgᵀ x, dWu += duᵀ x
 */
export function swigluBackward(dx: Float32Array, dwg: Float32Array, dwu: Float32Array, dwd: Float32Array, dout: Float32Array, x: Float32Array, gate: Float32Array, up: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
  const n = M * F;
  const h = new Float32Array(n);
  for (let i = 0; i < n; i++) h[i] = silu(gate[i]) * up[i];
  const dh = new Float32Array(n);
  linearBackward(dh, dwd, null, dout, h, wd, M, F, D);
  const dg = new Float32Array(n);
  const du = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    dg[i] = dh[i] * up[i] * siluGrad(gate[i]);
    du[i] = dh[i] * silu(gate[i]);
  }
  linearBackward(dx, dwg, null, dg, x, wg, M, D, F);
  linearBackward(dx, dwu, null, du, x, wu, M, D, F);
}

/** One expert of `swigluExpertsForward`: swigluForward's operands, with its own rows M and width F. */
export interface SwigluCall {
  out: Float32Array; // [M, D]
  gate: Float32Array | null; // [M, F], kept for backward when given
  up: Float32Array | null; // [M, F]
  x: Float32Array; // [M, D]
  w: SwigluWeights;
  M: number;
  F: number;
}

/** One expert of `swigluExpertsBackward`: swigluBackward's operands (dw: its weight gradients). */
export interface SwigluBackwardCall {
  dx: Float32Array;
  dw: SwigluWeights;
  dout: Float32Array;
  x: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  w: SwigluWeights;
  M: number;
  F: number;
}

/**
 * Independent SwiGLU experts of hidden size D (a training MoE layer: each routed expert on its
 * gathered rows, and the shared expert), one after the other. A backend may run them side by
 * side: no call may write memory that another call reads or writes.
 */
export function swigluExpertsForward(calls: SwigluCall[], D: number): void {
  for (const c of calls) swigluForward(c.out, c.gate, c.up, c.x, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
}

/** Backward of swigluExpertsForward (accumulates), one expert after the other. */
export function swigluExpertsBackward(calls: SwigluBackwardCall[], D: number): void {
  for (const c of calls) swigluBackward(c.dx, c.dw.gate, c.dw.up, c.dw.down, c.dout, c.x, c.gate, c.up, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
}
