/**
 * TAESD from a state dict: taesd.py's own names (`taesd_encoder.pth` / `taesd_decoder.pth`:
 * `0.weight`, `1.conv.0.weight`, ... for the encoder; the decoder's indices start at 1, after the
 * clamp) or diffusers' `AutoencoderTiny` names (`encoder.layers.k.*` = encoder `k.*`,
 * `decoder.layers.k.*` = decoder `(k + 1).*`). Widths come from the shapes; the tensors are
 * checked against taesd.py's layer list, with a report of missing, wrong-shaped and unexpected ones.
 */
import { DitMoeError } from '../../core/errors.js';
import type { Kernels } from '../../ref/kernels.js';
import { describeMismatch } from '../../ref/inferConfig.js';
import { specMismatch } from './load.js';
import { TAESD_ENCODER, TaesdHalf, taesdParamSpecs } from '../../ref/vae/taesd.js';
import { asFloat32, type StTensor } from '../safetensors.js';

export type TaesdRole = 'encoder' | 'decoder';

/** The halves a state dict holds, each in taesd.py's own names. */
export function taesdHalves(all: ReadonlyMap<string, StTensor>, where: string): Partial<Record<TaesdRole, Map<string, StTensor>>> {
  const keys = [...all.keys()];
  if (keys.some((k) => /^(encoder|decoder)\.layers\./.test(k))) {
    const enc = new Map<string, StTensor>();
    const dec = new Map<string, StTensor>();
    for (const [k, v] of all) {
      let m = /^encoder\.layers\.(.*)$/.exec(k);
      if (m) enc.set(m[1], v);
      m = /^decoder\.layers\.(\d+)\.(.*)$/.exec(k);
      if (m) dec.set(`${Number(m[1]) + 1}.${m[2]}`, v);
    }
    return { ...(enc.size ? { encoder: enc } : {}), ...(dec.size ? { decoder: dec } : {}) };
  }
  const first = all.get('0.weight');
  if (first && first.shape.length === 4) return { encoder: new Map(all) };
  const dfirst = all.get('1.weight');
  if (dfirst && dfirst.shape.length === 4) return { decoder: new Map(all) };
  throw new DitMoeError(`is not a TAESD encoder or decoder: it has no '0.weight' (encoder), '1.weight' (decoder) or 'encoder.layers.*' / 'decoder.layers.*' (diffusers AutoencoderTiny) tensors${keys.length ? ` (its first names: ${keys.slice(0, 3).join(', ')})` : ''}`, where);
}

/** One half, checked against taesd.py's layer list. */
export function loadTaesdHalf(role: TaesdRole, tensors: ReadonlyMap<string, StTensor>, where: string, kernels: Kernels): TaesdHalf {
  const first = tensors.get(role === 'encoder' ? '0.weight' : '1.weight')!;
  if (!first || first.shape.length !== 4) throw new DitMoeError(`has no TAESD ${role} first convolution '${role === 'encoder' ? '0.weight' : '1.weight'}'`, where);
  const c = first.shape[0];
  const L = role === 'encoder' ? (tensors.get(`${TAESD_ENCODER.length - 1}.weight`)?.shape[0] ?? 0) : first.shape[1];
  const pool = [...tensors.keys()].some((k) => /\.pool\./.test(k));
  const m = specMismatch(taesdParamSpecs(role, c, L, pool), tensors);
  if (m.missing.length || m.wrongShape.length || m.unexpected.length) throw new DitMoeError(`is not a TAESD ${role} of width ${c} on ${L} latent channels (taesd.py's names): ${describeMismatch(m)}`, where);
  const data = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const [k, v] of tensors) {
    data.set(k, asFloat32(v));
    shapes.set(k, v.shape);
  }
  return new TaesdHalf(role, data, shapes, kernels, `${where} (TAESD ${role})`);
}

