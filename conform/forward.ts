/**
 * kind = forward: the eval-mode forward with every intermediate (`out.t_freq`, `out.c`,
 * `out.block{i}.*`, `out.final`, `out.eps`) and, when `in.cfg_scale` is present, both forms
 * of guidance (`out.cfg_official`: 3 channels, `out.cfg_all_channels`: all in_channels).
 */
import { asFloat32, asNumbers, f32, i64, type StTensor } from '../io/safetensors.js';
import { DitMoeError } from '../core/errors.js';
import { input, registerCaseKind } from './case.js';

registerCaseKind('forward', (c, ctx) => {
  const model = ctx.model();
  const x = input(c, 'in.x', ctx.where);
  const t = asNumbers(input(c, 'in.t', ctx.where));
  const y = asNumbers(input(c, 'in.y', ctx.where));
  const outs = new Map<string, StTensor>();
  model.forward(asFloat32(x), x.shape, t, y, (name, data, shape) => {
    outs.set(`out.${name}`, data instanceof Int32Array ? i64(shape, data) : f32(shape, Float32Array.from(data)));
  });
  const scaleT = c.tensors.get('in.cfg_scale');
  if (scaleT) {
    const scale = asNumbers(scaleT)[0];
    if (!Number.isFinite(scale)) throw new DitMoeError(`guidance scale ${scale} is not finite`, `${ctx.where}: in.cfg_scale`);
    const shape = model.outputShape(x.shape[0]);
    outs.set('out.cfg_official', f32(shape, model.forwardWithCfg(asFloat32(x), x.shape, t, y, scale, 3)));
    outs.set('out.cfg_all_channels', f32(shape, model.forwardWithCfg(asFloat32(x), x.shape, t, y, scale, model.config.in_channels)));
  }
  return outs;
});
