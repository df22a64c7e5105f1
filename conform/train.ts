/**
 * kind = train: one training step of a fresh copy of the model (training mode, labels as
 * given). DDPM (`in.x0`, `in.noise`, `in.t`, `in.y`; linear schedule of 1000 steps,
 * learned-range variance): `out.mse`, `out.vb` [B], `out.loss`, `out.aux` (each block's
 * balance loss), `out.total` = loss + Σ aux, and `grad.<param>` = ∂ total / ∂ param.
 * Rectified flow (`in.rf_t`, `in.rf_z1`): `out.rf_loss`, `out.rf_aux`, `rfgrad.<param>`.
 * AdamW: `adamw2.<param>` = the parameters after two steps with the DDPM gradients, the
 * hyper-parameters from `__metadata__.adamw`. The gradients are the case's own `grad.*` when it
 * carries them (as the golden file does), else ours: AdamW's step m/√v does not depend on the
 * gradient's scale, so for the many near-zero gradients a float32-level difference in g moves
 * the parameter by up to lr per step. Feeding the stated gradients tests the optimiser alone
 * (to 1e-6); our gradients are judged by `grad.*` themselves.
 */
import { DitMoeError } from '../core/errors.js';
import { asFloat32, asNumbers, f32, type StTensor } from '../io/safetensors.js';
import { DiTModel } from '../ref/model.js';
import { ParamStore } from '../ref/params.js';
import { createDiffusion, qSample, ddpmLossForward, ddpmLossBackward, rfInterpolate, rfLossForward, rfLossBackward } from '../ref/diffusion/index.js';
import { AdamW } from '../train/adamw.js';
import { input, registerCaseKind } from './case.js';

function gradTensors(prefix: string, grads: ParamStore, outs: Map<string, StTensor>): void {
  for (const s of grads.specs) if (s.trainable) outs.set(`${prefix}.${s.name}`, f32(s.shape, Float32Array.from(grads.get(s.name))));
}

registerCaseKind('train', (c, ctx) => {
  const where = ctx.where;
  const base = ctx.model();
  // a fresh copy: the AdamW steps below must not change the loaded model
  const model = new DiTModel(base.config, new ParamStore(base.params.specs, Float32Array.from(base.params.data)), ctx.kernels);
  const C = model.config.in_channels;
  const outs = new Map<string, StTensor>();
  const x0T = input(c, 'in.x0', where);
  const x0 = asFloat32(x0T);
  const shape = x0T.shape;
  const [B, , H, W] = shape;
  const HW = H * W;
  const y = Int32Array.from(asNumbers(input(c, 'in.y', where)));
  const outC = model.outputShape(B)[1];
  const sumAux = (aux: number[]) => aux.reduce((a, b) => a + b, 0);
  let ddpmGrads: ParamStore | null = null;

  if (c.tensors.has('in.noise') && c.tensors.has('in.t')) {
    if (!model.config.learn_sigma) throw new DitMoeError('the DDPM case needs a model with learned sigma', where);
    const noise = asFloat32(input(c, 'in.noise', where));
    const t = asNumbers(input(c, 'in.t', where));
    const sched = createDiffusion({ respacing: '' });
    const xt = new Float32Array(x0.length);
    qSample(xt, x0, noise, t, sched, B, C * HW);
    const r = model.forwardTrain(xt, shape, t, y);
    const terms = ddpmLossForward(sched, x0, xt, noise, t, r.out, B, C, HW);
    outs.set('out.mse', f32([B], Float32Array.from(terms.mse)));
    outs.set('out.vb', f32([B], Float32Array.from(terms.vb)));
    outs.set('out.loss', f32([1], Float32Array.of(terms.loss)));
    outs.set('out.aux', f32([r.aux.length], Float32Array.from(r.aux)));
    outs.set('out.total', f32([1], Float32Array.of(terms.loss + sumAux(r.aux))));
    const dout = new Float32Array(r.out.length);
    ddpmLossBackward(dout, sched, x0, xt, noise, t, r.out, B, C, HW);
    ddpmGrads = model.params.zerosLike();
    model.backward(dout, r.cache!, ddpmGrads, 1);
    model.release(r.cache!);
    gradTensors('grad', ddpmGrads, outs);
  }

  if (c.tensors.has('in.rf_t') && c.tensors.has('in.rf_z1')) {
    const t = asFloat32(input(c, 'in.rf_t', where));
    const z1 = asFloat32(input(c, 'in.rf_z1', where));
    const xt = new Float32Array(x0.length);
    rfInterpolate(xt, x0, z1, t, B, C * HW);
    const r = model.forwardTrain(xt, shape, t, y);
    const terms = rfLossForward(r.out, x0, z1, B, C, HW, outC);
    outs.set('out.rf_loss', f32([1], Float32Array.of(terms.loss)));
    outs.set('out.rf_aux', f32([r.aux.length], Float32Array.from(r.aux)));
    const dout = new Float32Array(r.out.length);
    rfLossBackward(dout, r.out, x0, z1, B, C, HW, outC);
    const grads = model.params.zerosLike();
    model.backward(dout, r.cache!, grads, 1);
    model.release(r.cache!);
    gradTensors('rfgrad', grads, outs);
  }

  if (c.metadata.adamw && ddpmGrads) {
    let hp: { lr: number; betas: [number, number]; eps: number; weight_decay: number; steps: number };
    try {
      hp = JSON.parse(c.metadata.adamw);
    } catch (e) {
      throw new DitMoeError(`__metadata__.adamw is not valid JSON (${(e as Error).message})`, where);
    }
    let g = ddpmGrads;
    if (model.params.specs.every((s) => !s.trainable || c.tensors.has(`grad.${s.name}`))) {
      g = model.params.zerosLike();
      for (const s of model.params.specs) if (s.trainable) g.get(s.name).set(asFloat32(c.tensors.get(`grad.${s.name}`)!));
    }
    const opt = new AdamW(model.params, { lr: hp.lr, beta1: hp.betas[0], beta2: hp.betas[1], eps: hp.eps, weightDecay: hp.weight_decay });
    for (let s = 0; s < hp.steps; s++) opt.update(g);
    for (const s of model.params.specs) if (s.trainable) outs.set(`adamw${hp.steps}.${s.name}`, f32(s.shape, Float32Array.from(model.params.get(s.name))));
  }
  return outs;
});
