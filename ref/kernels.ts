/**
 * The kernel interface: the arithmetic the model needs, and nothing else. The model
 * (`model.ts`, `block.ts`, `moe.ts`, ...) is written once against this interface; `ref`
 * implements it with the plain functions of this folder (`refKernels.ts`), `wasm/` with
 * WebAssembly SIMD. The operand checks every backend applies are next to it (`kernelChecks.ts`).
 * A backend may keep state (packed weights, a memory arena) but must give the same
 * numbers as `refKernels` within the tolerances stated in `spec/`.
 *
 * Conventions (llm.c style): outputs first, dimensions last; every array row-major;
 * weights `[out, in]` as PyTorch stores them. Forward kernels overwrite their outputs;
 * backward kernels accumulate (+=) into gradient buffers, which the caller zeroes.
 */
import type { SwigluWeights, SwigluCall, SwigluBackwardCall } from './swiglu.js';
import type { Conv2dShape } from './vae/conv2d.js';

export interface Kernels {
  readonly name: string;
  /** out[M,N] = x[M,K] · w[N,K]ᵀ + b[N] (b may be null). */
  linear(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, M: number, K: number, N: number): void;
  /** dx[M,K] += dout·w, dw[N,K] += doutᵀ·x, db[N] += Σ_rows dout. Any of dx, dw, db may be null. */
  linearBackward(dx: Float32Array | null, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number): void;
  /** out[M,D] = (x - mean)·rstd (· w + b when given); mean, rstd [M] are written for backward. */
  layerNorm(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, M: number, D: number, eps: number): void;
  layerNormBackward(dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, dout: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, M: number, D: number): void;
  /** adaLN modulation: out[B,T,D] = x·(1 + scale) + shift, with shift, scale [B, D] broadcast over the T tokens. */
  modulate(out: Float32Array, x: Float32Array, shift: Float32Array, scale: Float32Array, B: number, T: number, D: number): void;
  /** dx += dy·(1 + scale), dshift[b] += Σ_t dy, dscale[b] += Σ_t dy·x. */
  modulateBackward(dx: Float32Array, dshift: Float32Array, dscale: Float32Array, dout: Float32Array, x: Float32Array, scale: Float32Array, B: number, T: number, D: number): void;
  /** The gated residual of adaLN-Zero, in place: x[B,T,D] += gate · f, gate [B, D] broadcast over tokens. */
  gatedResidual(x: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void;
  /** df += dy·gate, dgate[b] += Σ_t dy·f (the residual's dx is dy itself). */
  gatedResidualBackward(df: Float32Array, dgate: Float32Array, dout: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void;
  /**
   * Multi-head self-attention core on a fused qkv [B, T, 3, H, Dh] (timm and flash layouts agree):
   * out[B,T,H·Dh] = softmax(q kᵀ / √Dh) v per head; probs [B,H,T,T] is written when not null.
   */
  attention(out: Float32Array, probs: Float32Array | null, qkv: Float32Array, B: number, T: number, H: number, Dh: number): void;
  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, probs: Float32Array, B: number, T: number, H: number, Dh: number): void;
  /**
   * SwiGLU expert: out[M,D] = (silu(x·Wgᵀ) ⊙ (x·Wuᵀ))·Wdᵀ with Wg, Wu [F,D], Wd [D,F].
   * gate, up [M,F] (pre-activation) are written for backward when not null.
   */
  swiglu(out: Float32Array, gate: Float32Array | null, up: Float32Array | null, x: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void;
  swigluBackward(dx: Float32Array, dwg: Float32Array, dwu: Float32Array, dwd: Float32Array, dout: Float32Array, x: Float32Array, gate: Float32Array, up: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void;
  /**
   * Independent SwiGLU experts of hidden size D in one call, the same as `swiglu` on each in turn
   * (a training MoE layer: each routed expert on its gathered rows, and the shared expert), so a
   * backend may run them side by side. No call may write memory another call reads or writes.
   */
  swigluExperts(calls: SwigluCall[], D: number): void;
  /** The same for `swigluBackward` (accumulates). */
  swigluExpertsBackward(calls: SwigluBackwardCall[], D: number): void;
  /** MoE dispatch: out[r, :] = x[slots[r] / k, :] for the n = slots.length routing slots of one expert (out [n, D]). */
  gatherRows(out: Float32Array, x: Float32Array, slots: Int32Array, k: number, D: number): void;
  /** MoE combine: out[slots[r] / k, :] += weight[slots[r]] · y[r, :], rows in order (weight null: 1). */
  scatterAddRows(out: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array | null, k: number, D: number): void;
  /** Its backward for one expert: dy[r, :] = weight[s]·dout[m, :], dweight[s] = dout[m, :]·y[r, :] (s = slots[r], m = s / k; both overwritten). */
  scatterAddRowsBackward(dy: Float32Array, dweight: Float32Array, dout: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array, k: number, D: number): void;
  /**
   * The routed experts of an MoE layer in eval, dispatched and combined (moeExperts.ts):
   *   out[m, :] = Σ_j weight[m, j] · Expert_{idx[m, j]}(x[m, :]),  x, out [M, D]; idx, weight [M, k];
   * each of the E experts a SwiGLU of width F. Keeps nothing for backward.
   */
  moeExperts(out: Float32Array, x: Float32Array, topkIdx: Int32Array, topkWeight: Float32Array, experts: SwigluWeights[], M: number, D: number, F: number, k: number): void;
  /**
   * 2-D convolution (ref/vae/conv2d.ts): x [N, C, H, W], w [O, C, kh, kw], b [O] or null →
   * out [N, O, Ho, Wo] with the stride and (possibly uneven) zero padding of `shape`.
   */
  conv2d(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, shape: Conv2dShape): void;
  /**
   * GroupNorm over x [N, C, S] in G groups (ref/vae/groupNorm.ts), affine when w, b are given,
   * then SiLU when `silu`: out [N, C, S].
   */
  groupNorm(out: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, N: number, C: number, S: number, G: number, eps: number, silu: boolean): void;
  /**
   * A zeroed array of n floats for an activation or gradient inside one pass. The wasm backend
   * hands out views of its own memory, which its kernels read and write in place (no copy in or
   * out); ref hands out a plain Float32Array. Valid until `release` of a mark taken before it.
   */
  tensor(n: number): Float32Array;
  /** How many tensors have been handed out: a mark to release back to. */
  mark(): number;
  /** Frees every tensor handed out since `mark` (newest first); they must not be used again. */
  release(mark: number): void;
  /** Called after the optimiser changes weights in place, so a backend can drop packed copies. */
  weightsChanged?(): void;
}

/** A tensor of `kern` holding a copy of src. */
export function tensorFrom(kern: Kernels, src: Float32Array): Float32Array {
  const t = kern.tensor(src.length);
  t.set(src);
  return t;
}
