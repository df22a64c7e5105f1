/**
 * kind = moe_layer: one MoE layer alone. Weights are in the case under `w.` + the layer's
 * state_dict names, sizes in `__metadata__.layer`. Writes the router outputs, the layer
 * output (`out.y_eval`, `out.y_train`: the same values), both balance-loss variants, the
 * renormalised top-k weights, and the gradients of sum(y · in.r) + aux (`grad.*`, `out.grad_x`)
 * when `in.r` is present.
 */
import { asFloat32, f32, i64, type StTensor } from '../io/safetensors.js';
import { DitMoeError } from '../core/errors.js';
import { moeForward, moeBackward, type MoeWeights, type MoeGrads, type MoeDims } from '../ref/moe.js';
import { routerForward } from '../ref/router.js';
import { balanceLossForward } from '../ref/balanceLoss.js';
import { input, metaJson, registerCaseKind } from './case.js';

interface LayerMeta {
  hidden_size: number;
  num_experts: number;
  num_experts_per_tok: number;
  mlp_ratio: number;
  n_shared_experts: number;
  aux_loss_alpha: number;
  norm_topk_prob?: boolean;
}

registerCaseKind('moe_layer', (c, ctx) => {
  const where = ctx.where;
  const L = metaJson<LayerMeta>(c, 'layer', where);
  for (const f of ['hidden_size', 'num_experts', 'num_experts_per_tok', 'mlp_ratio'] as const) {
    if (!(typeof L[f] === 'number' && L[f] > 0)) throw new DitMoeError(`__metadata__.layer.${f} = ${JSON.stringify(L[f])}, expected a positive number`, where);
  }
  const D = L.hidden_size;
  const E = L.num_experts;
  const k = L.num_experts_per_tok;
  const dims: MoeDims = { D, E, k, F: Math.round(L.mlp_ratio * D), Fs: (L.n_shared_experts ?? 0) * D, normTopk: !!L.norm_topk_prob, alpha: L.aux_loss_alpha ?? 0, seqAux: false };
  const x = input(c, 'in.x', where);
  if (x.shape.length !== 3 || x.shape[2] !== D) throw new DitMoeError(`expected shape [B, T, ${D}], got [${x.shape.join(', ')}]`, `${where}: in.x`);
  const [B, T] = x.shape;
  const M = B * T;
  const W = (name: string, shape: number[]) => {
    const t = input(c, `w.${name}`, where);
    if (t.shape.join() !== shape.join()) throw new DitMoeError(`expected shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`, `${where}: w.${name}`);
    return asFloat32(t);
  };
  const swiglu = (pre: string, F: number) => ({ gate: W(`${pre}gate_proj.weight`, [F, D]), up: W(`${pre}up_proj.weight`, [F, D]), down: W(`${pre}down_proj.weight`, [D, F]) });
  const w: MoeWeights = {
    gate: W('gate.weight', [E, D]),
    experts: Array.from({ length: E }, (_, e) => swiglu(`experts.${e}.`, dims.F)),
    shared: dims.Fs > 0 ? swiglu('shared_experts.', dims.Fs) : null,
  };
  const xs = asFloat32(x);
  const kern = ctx.kernels;
  const outs = new Map<string, StTensor>();
  const y = new Float32Array(M * D);
  const cache = moeForward(kern, y, xs, w, dims, B, T);
  const r = cache.router;
  outs.set('out.logits', f32([M, E], r.logits));
  outs.set('out.scores', f32([M, E], r.scores));
  outs.set('out.topk_idx', i64([M, k], r.topkIdx));
  outs.set('out.topk_weight', f32([M, k], r.topkWeight));
  outs.set('out.topk_weight_normalized', f32([M, k], routerForward(kern, xs, w.gate, M, D, E, k, true).topkWeight));
  outs.set('out.y_eval', f32([B, T, D], y));
  outs.set('out.y_train', f32([B, T, D], y));
  outs.set('out.aux_loss', f32([1], Float32Array.of(balanceLossForward(r.scores, r.topkIdx, B, T, E, k, dims.alpha, false))));
  outs.set('out.aux_loss_seq', f32([1], Float32Array.of(balanceLossForward(r.scores, r.topkIdx, B, T, E, k, dims.alpha, true))));
  const rT = c.tensors.get('in.r');
  if (rT) {
    if (rT.shape.join() !== x.shape.join()) throw new DitMoeError(`expected the shape of in.x [${x.shape.join(', ')}], got [${rT.shape.join(', ')}]`, `${where}: in.r`);
    const z = (a: Float32Array) => new Float32Array(a.length);
    const g: MoeGrads = { gate: z(w.gate), experts: w.experts.map((e) => ({ gate: z(e.gate), up: z(e.up), down: z(e.down) })), shared: w.shared && { gate: z(w.shared.gate), up: z(w.shared.up), down: z(w.shared.down) } };
    const dx = new Float32Array(M * D);
    moeBackward(kern, dx, g, asFloat32(rT), xs, w, cache, dims, B, T, 1);
    outs.set('out.grad_x', f32([B, T, D], dx));
    outs.set('grad.gate.weight', f32([E, D], g.gate));
    g.experts.forEach((e, i) => {
      outs.set(`grad.experts.${i}.gate_proj.weight`, f32([dims.F, D], e.gate));
      outs.set(`grad.experts.${i}.up_proj.weight`, f32([dims.F, D], e.up));
      outs.set(`grad.experts.${i}.down_proj.weight`, f32([D, dims.F], e.down));
    });
    if (g.shared) {
      outs.set('grad.shared_experts.gate_proj.weight', f32([dims.Fs, D], g.shared.gate));
      outs.set('grad.shared_experts.up_proj.weight', f32([dims.Fs, D], g.shared.up));
      outs.set('grad.shared_experts.down_proj.weight', f32([D, dims.Fs], g.shared.down));
    }
  }
  return outs;
});
