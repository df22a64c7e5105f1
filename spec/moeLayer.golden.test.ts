/**
 * Golden: one MoE layer alone (golden/tiny.moe_layer.safetensors): hidden 32, 16 experts,
 * top-2, expert width 64, shared width 64. Tolerance 2e-4 relative to max(1, max|golden|)
 * for the forward (float32 sums of ≤ 64 terms; measured far below), 1e-3 for gradients
 * (longer chains of float32 products), as issues 2 and 4 state.
 */
import { describe, it, expect } from 'vitest';
import { golden, gt, expectClose } from './golden.js';
import { asFloat32, asNumbers } from '../io/safetensors.js';
import { backends } from './backends.js';
import { moeForward, moeBackward, type MoeWeights, type MoeGrads, type MoeDims } from '../ref/moe.js';
import { balanceLossForward } from '../ref/balanceLoss.js';
import { routerForward } from '../ref/router.js';

const g = golden('tiny.moe_layer.safetensors');
const layer = JSON.parse(g.metadata.layer) as { hidden_size: number; num_experts: number; num_experts_per_tok: number; mlp_ratio: number; n_shared_experts: number; aux_loss_alpha: number };
const D = layer.hidden_size;
const E = layer.num_experts;
const k = layer.num_experts_per_tok;
const dims: MoeDims = { D, E, k, F: layer.mlp_ratio * D, Fs: layer.n_shared_experts * D, normTopk: false, alpha: layer.aux_loss_alpha, seqAux: false };
const [B, T] = gt(g, 'in.x').shape;
const M = B * T;
const x = asFloat32(gt(g, 'in.x'));
const W = (n: string) => asFloat32(gt(g, `w.${n}`));
const weights: MoeWeights = {
  gate: W('gate.weight'),
  experts: Array.from({ length: E }, (_, e) => ({ gate: W(`experts.${e}.gate_proj.weight`), up: W(`experts.${e}.up_proj.weight`), down: W(`experts.${e}.down_proj.weight`) })),
  shared: { gate: W('shared_experts.gate_proj.weight'), up: W('shared_experts.up_proj.weight'), down: W('shared_experts.down_proj.weight') },
};
const zerosLike = (w: MoeWeights): MoeGrads => ({
  gate: new Float32Array(w.gate.length),
  experts: w.experts.map((e) => ({ gate: new Float32Array(e.gate.length), up: new Float32Array(e.up.length), down: new Float32Array(e.down.length) })),
  shared: w.shared && { gate: new Float32Array(w.shared.gate.length), up: new Float32Array(w.shared.up.length), down: new Float32Array(w.shared.down.length) },
});

describe.each(backends())('MoE layer golden [%s]', (_name, kern) => {
  it('router: logits, scores, top-k indices and weights, renormalised weights', () => {
    const r = routerForward(kern, x, weights.gate, M, D, E, k, false);
    expectClose('logits', r.logits, gt(g, 'out.logits'), 2e-4);
    expectClose('scores', r.scores, gt(g, 'out.scores'), 2e-4);
    expect(Array.from(r.topkIdx)).toEqual(Array.from(asNumbers(gt(g, 'out.topk_idx'))));
    expectClose('topk_weight', r.topkWeight, gt(g, 'out.topk_weight'), 2e-4);
    const rn = routerForward(kern, x, weights.gate, M, D, E, k, true);
    expectClose('topk_weight_normalized', rn.topkWeight, gt(g, 'out.topk_weight_normalized'), 2e-4);
  });

  it('layer output on the eval path (Kernels.moeExperts) and the training path, and both balance-loss variants', () => {
    const yEval = new Float32Array(M * D);
    const evalCache = moeForward(kern, yEval, x, weights, dims, B, T, false);
    expectClose('y_eval', yEval, gt(g, 'out.y_eval'), 2e-4);
    expect(evalCache.groups).toHaveLength(0); // eval keeps no expert activations
    const y = new Float32Array(M * D);
    const cache = moeForward(kern, y, x, weights, dims, B, T, true);
    expectClose('y_train', y, gt(g, 'out.y_train'), 2e-4);
    expectClose('aux_loss', [cache.aux], gt(g, 'out.aux_loss'), 1e-6);
    const seq = balanceLossForward(cache.router.scores, cache.router.topkIdx, B, T, E, k, dims.alpha, true);
    expectClose('aux_loss_seq', [seq], gt(g, 'out.aux_loss_seq'), 1e-6);
  });

  it('gradients of sum(y · r) + aux for every weight and the input', () => {
    const y = new Float32Array(M * D);
    const cache = moeForward(kern, y, x, weights, dims, B, T);
    const dy = asFloat32(gt(g, 'in.r'));
    const dx = new Float32Array(M * D);
    const grads = zerosLike(weights);
    moeBackward(kern, dx, grads, dy, x, weights, cache, dims, B, T, 1);
    expectClose('grad_x', dx, gt(g, 'out.grad_x'), 1e-3);
    expectClose('grad.gate.weight', grads.gate, gt(g, 'grad.gate.weight'), 1e-3);
    for (let e = 0; e < E; e++) {
      for (const p of ['gate', 'up', 'down'] as const) expectClose(`grad.experts.${e}.${p}_proj.weight`, grads.experts[e][p], gt(g, `grad.experts.${e}.${p}_proj.weight`), 1e-3);
    }
    for (const p of ['gate', 'up', 'down'] as const) expectClose(`grad.shared_experts.${p}_proj.weight`, grads.shared![p], gt(g, `grad.shared_experts.${p}_proj.weight`), 1e-3);
  });
});
