/**
 * The sparse MoE layer (official `SparseMoeBlock`): routed experts plus shared experts.
 *   x [M, D] (M = batch·tokens)
 *   router:  idx, weight [M, k] = top-k of softmax(x Wgateᵀ)             (router.ts)
 *   routed:  y_m = Σ_j weight[m,j] · Expert_{idx[m,j]}(x_m)             (SwiGLU experts, swiglu.ts)
 *   shared:  y_m += Shared(x_m)       (one SwiGLU of width n_shared·D that every token passes)
 *   aux  = the balance loss of the routing (balanceLoss.ts), in training
 * Dispatch is sparse (moeExperts.ts): a counting sort groups the M·k routing slots by expert,
 * each expert runs once as a dense product over its tokens, and the weighted outputs are
 * scatter-added back.
 */
import type { Kernels } from './kernels.js';
import { routerForward, routerBackward, type RouterOutput } from './router.js';
import { balanceLossForward, balanceLossBackward } from './balanceLoss.js';
import { dispatchByExpert } from './moeExperts.js';
import type { SwigluCall, SwigluBackwardCall, SwigluWeights } from './swiglu.js';

export type { SwigluWeights } from './swiglu.js';

export interface MoeWeights {
  gate: Float32Array; // router [E, D]
  experts: SwigluWeights[]; // E experts of width F
  shared: SwigluWeights | null; // width Fs
}

export interface MoeDims {
  D: number; // hidden size
  E: number; // routed experts
  k: number; // experts per token
  F: number; // routed expert width (mlp_ratio·D)
  Fs: number; // shared expert width (n_shared·D), 0 when none
  normTopk: boolean;
  alpha: number; // balance-loss coefficient
  seqAux: boolean; // per-sequence balance loss
}

/** The tokens one expert processes: which slots, their gathered inputs and saved activations. */
export interface ExpertGroup {
  slots: Int32Array; // [n] routing slots m·k + j that chose this expert, in token order
  xIn: Float32Array; // [n, D] gathered inputs
  gate: Float32Array; // [n, F] pre-activations, for backward
  up: Float32Array; // [n, F]
  out: Float32Array; // [n, D] expert outputs before weighting
}

export interface MoeCache {
  router: RouterOutput;
  groups: ExpertGroup[]; // [E]
  shared: Float32Array | null; // [M, D] shared-expert output
  sharedGate: Float32Array | null; // [M, Fs]
  sharedUp: Float32Array | null; // [M, Fs]
  aux: number; // balance loss (0 when alpha = 0)
}

/**
 * out [M, D] = routed + shared experts of x [M, D] (B sequences of T tokens, M = B·T).
 * train: keep each expert's gathered inputs and activations for moeBackward; in eval the
 * routed experts run as one kernel call (`Kernels.moeExperts`) that keeps nothing.
 */
export function moeForward(kern: Kernels, out: Float32Array, x: Float32Array, w: MoeWeights, dims: MoeDims, B: number, T: number, train = true): MoeCache {
  const { D, E, k, F, Fs } = dims;
  const M = B * T;
  const router = routerForward(kern, x, w.gate, M, D, E, k, dims.normTopk);
  const groups: ExpertGroup[] = [];
  const hasShared = w.shared !== null && Fs > 0;
  const shared = hasShared ? kern.tensor(M * D) : null;
  const sharedGate = hasShared && train ? kern.tensor(M * Fs) : null;
  const sharedUp = hasShared && train ? kern.tensor(M * Fs) : null;
  if (!train) {
    kern.moeExperts(out, x, router.topkIdx, router.topkWeight, w.experts, M, D, F, k);
    if (shared) kern.swiglu(shared, null, null, x, w.shared!.gate, w.shared!.up, w.shared!.down, M, D, Fs);
  } else {
    // every expert on its gathered rows, and the shared expert, in one call (side by side on threads)
    const calls: SwigluCall[] = [];
    const slotsByExpert = dispatchByExpert(router.topkIdx, E);
    for (let e = 0; e < E; e++) {
      const slots = slotsByExpert[e];
      const n = slots.length;
      const xIn = kern.tensor(n * D);
      kern.gatherRows(xIn, x, slots, k, D);
      const grp = { slots, xIn, gate: kern.tensor(n * F), up: kern.tensor(n * F), out: kern.tensor(n * D) };
      if (n > 0) calls.push({ out: grp.out, gate: grp.gate, up: grp.up, x: xIn, w: w.experts[e], M: n, F });
      groups.push(grp);
    }
    if (shared) calls.push({ out: shared, gate: sharedGate, up: sharedUp, x, w: w.shared!, M, F: Fs });
    kern.swigluExperts(calls, D);
    out.fill(0);
    for (const grp of groups) kern.scatterAddRows(out, grp.out, grp.slots, router.topkWeight, k, D);
  }
  if (shared) for (let i = 0; i < M * D; i++) out[i] += shared[i];
  const aux = dims.alpha > 0 ? balanceLossForward(router.scores, router.topkIdx, B, T, E, k, dims.alpha, dims.seqAux) : 0;
  return { router, groups, shared, sharedGate, sharedUp, aux };
}

export interface MoeGrads {
  gate: Float32Array;
  experts: SwigluWeights[];
  shared: SwigluWeights | null;
}

/**
 * Backward of moeForward (accumulates into dx [M, D] and the weight gradients). `daux` is the
 * gradient of the total loss with respect to this layer's balance loss (1 in the official
 * training, which adds every layer's aux loss to the total with coefficient one).
 */
export function moeBackward(kern: Kernels, dx: Float32Array, g: MoeGrads, dout: Float32Array, x: Float32Array, w: MoeWeights, cache: MoeCache, dims: MoeDims, B: number, T: number, daux: number): void {
  const { D, E, k, F, Fs } = dims;
  const M = B * T;
  const r = cache.router;
  if (cache.groups.length !== E) throw new Error('moeBackward needs the caches of a training forward (moeForward with train = true)');
  // shared experts (out += Shared(x)) and routed experts (out_m += weight_s · eo_r) in one call:
  // deo_r = weight_s · dout_m, dweight_s = dout_m · eo_r
  const calls: SwigluBackwardCall[] = [];
  if (w.shared && g.shared && cache.sharedGate && cache.sharedUp && Fs > 0) {
    calls.push({ dx, dw: g.shared, dout, x, gate: cache.sharedGate, up: cache.sharedUp, w: w.shared, M, F: Fs });
  }
  const dWeight = kern.tensor(M * k);
  const dxIn: Float32Array[] = [];
  for (let e = 0; e < E; e++) {
    const grp = cache.groups[e];
    const n = grp.slots.length;
    dxIn.push(kern.tensor(n * D));
    if (n === 0) continue;
    const deo = kern.tensor(n * D);
    kern.scatterAddRowsBackward(deo, dWeight, dout, grp.out, grp.slots, r.topkWeight, k, D);
    calls.push({ dx: dxIn[e], dw: g.experts[e], dout: deo, x: grp.xIn, gate: grp.gate, up: grp.up, w: w.experts[e], M: n, F });
  }
  kern.swigluExpertsBackward(calls, D);
  for (let e = 0; e < E; e++) kern.scatterAddRows(dx, dxIn[e], cache.groups[e].slots, null, k, D); // inverts the gather
  // balance loss → scores; weights → scores; then the router's softmax and linear layer
  let dScores: Float32Array | null = null;
  if (dims.alpha > 0 && daux !== 0) {
    dScores = new Float32Array(M * E);
    balanceLossBackward(dScores, daux, r.topkIdx, B, T, E, k, dims.alpha, dims.seqAux);
  }
  routerBackward(kern, dx, g.gate, dWeight, dScores, r, x, w.gate, M, D, E, k, dims.normTopk);
}
