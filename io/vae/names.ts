/**
 * The names a Stable Diffusion VAE's tensors go by, all brought to diffusers' current names
 * (ref/vae/params.ts):
 *   diffusers  `encoder.down_blocks.0.resnets.0.conv1.weight`, `...mid_block.attentions.0.to_q.weight`
 *   legacy     older diffusers files (sd-vae-ft-mse as published): attention `query`, `key`, `value`, `proj_attn`
 *   ldm        the original LDM/CompVis names of `.ckpt` files, as diffusers' `convert_ldm_vae_checkpoint`
 *              reads them: `encoder.down.i.block.j`, `decoder.up.(levels−1−i)`, `mid.block_1/2`,
 *              `mid.attn_1.{norm,q,k,v,proj_out}` (1×1 convolutions [C, C, 1, 1] → [C, C]),
 *              `nin_shortcut` → `conv_shortcut`, `norm_out` → `conv_norm_out`
 * A whole Stable Diffusion checkpoint keeps its VAE under `first_stage_model.`; some files use `vae.`:
 * then only those tensors are taken, prefix stripped.
 */
import type { StTensor } from '../safetensors.js';

export type VaeNaming = 'diffusers' | 'legacy' | 'ldm';

export interface RenamedVae {
  tensors: Map<string, StTensor>;
  naming: VaeNaming;
  /** The prefix stripped ('' when none). */
  prefix: string;
}

const LEGACY: Record<string, string> = { query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' };
const LDM_ATTN: Record<string, string> = { norm: 'group_norm', q: 'to_q', k: 'to_k', v: 'to_v', proj_out: 'to_out.0' };

/** The VAE's own tensors: under `first_stage_model.` or `vae.` when the file has such names. */
export function stripVaePrefix(all: ReadonlyMap<string, StTensor>): { tensors: Map<string, StTensor>; prefix: string } {
  for (const prefix of ['first_stage_model.', 'vae.']) {
    if (![...all.keys()].some((k) => k.startsWith(prefix))) continue;
    const tensors = new Map<string, StTensor>();
    for (const [k, v] of all) if (k.startsWith(prefix)) tensors.set(k.slice(prefix.length), v);
    return { tensors, prefix };
  }
  return { tensors: new Map(all), prefix: '' };
}

/** Which naming a VAE state dict uses (after the prefix). */
export function vaeNaming(names: Iterable<string>): VaeNaming {
  let legacy = false;
  for (const n of names) {
    if (/^(encoder|decoder)\.(down|up|mid)\./.test(n) || /^(encoder|decoder)\.norm_out\./.test(n)) return 'ldm';
    if (/\.attentions\.\d+\.(query|key|value|proj_attn)\./.test(n)) legacy = true;
  }
  return legacy ? 'legacy' : 'diffusers';
}

/** 1×1-convolution attention weights [C, C, 1, 1] read as the linear layers' [C, C]. */
function squeeze(t: StTensor): StTensor {
  return t.shape.length === 4 && t.shape[2] === 1 && t.shape[3] === 1 ? { ...t, shape: [t.shape[0], t.shape[1]] } : t;
}

function ldmName(name: string, levels: number): string {
  let m = /^(encoder|decoder)\.norm_out\.(.*)$/.exec(name);
  if (m) return `${m[1]}.conv_norm_out.${m[2]}`;
  m = /^(encoder)\.down\.(\d+)\.block\.(\d+)\.(.*)$/.exec(name) ?? /^(decoder)\.up\.(\d+)\.block\.(\d+)\.(.*)$/.exec(name);
  if (m) {
    const i = m[1] === 'encoder' ? Number(m[2]) : levels - 1 - Number(m[2]);
    return `${m[1]}.${m[1] === 'encoder' ? 'down' : 'up'}_blocks.${i}.resnets.${m[3]}.${m[4].replace(/^nin_shortcut\./, 'conv_shortcut.')}`;
  }
  m = /^encoder\.down\.(\d+)\.downsample\.conv\.(.*)$/.exec(name);
  if (m) return `encoder.down_blocks.${m[1]}.downsamplers.0.conv.${m[2]}`;
  m = /^decoder\.up\.(\d+)\.upsample\.conv\.(.*)$/.exec(name);
  if (m) return `decoder.up_blocks.${levels - 1 - Number(m[1])}.upsamplers.0.conv.${m[2]}`;
  m = /^(encoder|decoder)\.mid\.block_([12])\.(.*)$/.exec(name);
  if (m) return `${m[1]}.mid_block.resnets.${Number(m[2]) - 1}.${m[3].replace(/^nin_shortcut\./, 'conv_shortcut.')}`;
  m = /^(encoder|decoder)\.mid\.attn_1\.(norm|q|k|v|proj_out)\.(.*)$/.exec(name);
  if (m) return `${m[1]}.mid_block.attentions.0.${LDM_ATTN[m[2]]}.${m[3]}`;
  return name;
}

/** Renames a VAE state dict to diffusers' current names (unknown names are kept, for the report). */
export function toDiffusersNames(all: ReadonlyMap<string, StTensor>): RenamedVae {
  const { tensors: own, prefix } = stripVaePrefix(all);
  const naming = vaeNaming(own.keys());
  const tensors = new Map<string, StTensor>();
  if (naming === 'diffusers') return { tensors: own, naming, prefix };
  if (naming === 'legacy') {
    for (const [k, v] of own) {
      const m = /^(.*\.attentions\.\d+\.)(query|key|value|proj_attn)\.(.*)$/.exec(k);
      tensors.set(m ? `${m[1]}${LEGACY[m[2]]}.${m[3]}` : k, m ? squeeze(v) : v);
    }
    return { tensors, naming, prefix };
  }
  let levels = 0;
  for (const k of own.keys()) {
    const m = /^decoder\.up\.(\d+)\./.exec(k) ?? /^encoder\.down\.(\d+)\./.exec(k);
    if (m) levels = Math.max(levels, Number(m[1]) + 1);
  }
  for (const [k, v] of own) {
    const n = ldmName(k, levels);
    tensors.set(n, /\.mid_block\.attentions\.0\.to_/.test(n) ? squeeze(v) : v);
  }
  return { tensors, naming, prefix };
}
