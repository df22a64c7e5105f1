/**
 * A Stable Diffusion VAE (diffusers' AutoencoderKL) from a state dict in any naming
 * (io/vae/names.ts), float16 or float32. The configuration, in order of precedence:
 *   a given config object (a diffusers folder's config.json, or --vae-config)
 *   the file's `__metadata__.config` (safetensors) or `config` entry (.pt)
 *   inference from the shapes: in/out channels, block_out_channels, layers_per_block, latent
 *   channels, quant convs, mid-block attention; GroupNorm groups cannot be seen in any shape:
 *   32 (every SD VAE) unless `groups` is given; scaling_factor 0.18215 (SD) unless given.
 * The configuration is then checked against the tensors name by name: one error listing the
 * missing, wrong-shaped and unexpected tensors (in diffusers' names), as for the model.
 * Bytes and maps only: no file system.
 */
import { DitMoeError } from '../../core/errors.js';
import type { Kernels } from '../../ref/kernels.js';
import { describeMismatch, type ConfigMismatch } from '../../ref/inferConfig.js';
import { sameShape, shapeStr } from '../../core/tensor.js';
import { AutoencoderKL } from '../../ref/vae/autoencoderKL.js';
import { DEFAULT_VAE_CONFIG, checkVaeConfig, vaeConfigFrom, type VaeConfig } from '../../ref/vae/config.js';
import { vaeParamSpecs } from '../../ref/vae/params.js';
import { asFloat32, type StTensor } from '../safetensors.js';
import { toDiffusersNames, type VaeNaming } from './names.js';

export interface VaeLoadOptions {
  /** A diffusers configuration object (config.json); overrides the file's. */
  config?: unknown;
  /** GroupNorm groups when the configuration is inferred (default 32). */
  groups?: number;
  /** Where notes go (e.g. "configuration inferred"). */
  note?: (line: string) => void;
}

export interface LoadedVae {
  vae: AutoencoderKL;
  config: VaeConfig;
  naming: VaeNaming;
  /** "config.json", "__metadata__.config", "inferred from the tensor shapes". */
  origin: string;
}

type Shapes = ReadonlyMap<string, { readonly shape: readonly number[] }>;

/** The configuration a diffusers-named VAE state dict's shapes show (groups and scaling: given or SD's). */
export function inferVaeConfig(shapes: Shapes, where: string, groups = DEFAULT_VAE_CONFIG.norm_num_groups): VaeConfig {
  const shapeOf = (name: string, rank: number): readonly number[] => {
    const t = shapes.get(name);
    if (!t) {
      const names = [...shapes.keys()];
      throw new DitMoeError(`has no tensor '${name}', so it is not a Stable Diffusion VAE (AutoencoderKL) whose configuration can be inferred${names.length ? ` (its first names: ${names.slice(0, 3).join(', ')})` : ' (it holds no tensors)'}`, where);
    }
    if (t.shape.length !== rank) throw new DitMoeError(`tensor '${name}' has shape ${shapeStr(t.shape)}, expected ${rank} dimensions`, where);
    return t.shape;
  };
  const levels = new Set<number>();
  let layers = 0;
  for (const k of shapes.keys()) {
    const m = /^encoder\.down_blocks\.(\d+)\./.exec(k);
    if (m) levels.add(Number(m[1]));
    const r = /^encoder\.down_blocks\.0\.resnets\.(\d+)\./.exec(k);
    if (r) layers = Math.max(layers, Number(r[1]) + 1);
  }
  if (levels.size === 0) shapeOf('encoder.down_blocks.0.resnets.0.conv1.weight', 4);
  const ch: number[] = [];
  for (let i = 0; i < levels.size; i++) ch.push(shapeOf(`encoder.down_blocks.${i}.resnets.0.conv1.weight`, 4)[0]);
  const c: VaeConfig = {
    ...DEFAULT_VAE_CONFIG,
    in_channels: shapeOf('encoder.conv_in.weight', 4)[1],
    out_channels: shapeOf('decoder.conv_out.weight', 4)[0],
    block_out_channels: ch,
    layers_per_block: layers,
    latent_channels: shapeOf('decoder.conv_in.weight', 4)[1],
    norm_num_groups: groups,
    use_quant_conv: shapes.has('quant_conv.weight'),
    use_post_quant_conv: shapes.has('post_quant_conv.weight'),
    mid_block_add_attention: shapes.has('encoder.mid_block.attentions.0.to_q.weight') || shapes.has('decoder.mid_block.attentions.0.to_q.weight'),
  };
  try {
    checkVaeConfig(c, where);
  } catch (e) {
    if (e instanceof DitMoeError) throw new DitMoeError(`${e.message}; the groups are in no tensor's shape: state them in a configuration (norm_num_groups)`);
    throw e;
  }
  return c;
}

/** Missing, wrong-shaped and unexpected tensors against a list of names and shapes. */
export function specMismatch(specs: { name: string; shape: number[] }[], shapes: Shapes): ConfigMismatch {
  const out: ConfigMismatch = { missing: [], unexpected: [], wrongShape: [] };
  const known = new Set<string>();
  for (const s of specs) {
    known.add(s.name);
    const t = shapes.get(s.name);
    if (!t) out.missing.push(s.name);
    else if (!sameShape(t.shape, s.shape)) out.wrongShape.push({ name: s.name, expected: s.shape, got: [...t.shape] });
  }
  for (const n of shapes.keys()) if (!known.has(n)) out.unexpected.push(n);
  return out;
}

/** Missing, wrong-shaped and unexpected tensors against the configuration (diffusers' names). */
export function vaeMismatch(c: VaeConfig, shapes: Shapes): ConfigMismatch {
  return specMismatch(vaeParamSpecs(c), shapes);
}

/** The VAE of a state dict (any naming) and the file's metadata. */
export function loadVaeFromTensors(all: ReadonlyMap<string, StTensor>, metadata: Record<string, string>, where: string, kernels: Kernels, opts: VaeLoadOptions = {}): LoadedVae {
  const { tensors, naming } = toDiffusersNames(all);
  let config: VaeConfig;
  let origin: string;
  if (opts.config !== undefined) {
    config = vaeConfigFrom(opts.config, where);
    origin = 'the given configuration';
  } else if (metadata.config !== undefined) {
    let obj: unknown;
    try {
      obj = JSON.parse(metadata.config);
    } catch (e) {
      throw new DitMoeError(`__metadata__.config is not JSON (${(e as Error).message})`, where);
    }
    config = vaeConfigFrom(obj, where);
    origin = '__metadata__.config';
  } else {
    config = inferVaeConfig(tensors, where, opts.groups);
    origin = 'inferred from the tensor shapes';
    opts.note?.(`note: ${where} has no configuration; inferred from its tensor shapes (${naming} names): block_out_channels [${config.block_out_channels.join(', ')}], ${config.layers_per_block} layers per block, ${config.latent_channels} latent channels, taking norm_num_groups ${config.norm_num_groups} and scaling_factor ${config.scaling_factor} (Stable Diffusion's)`);
  }
  if (opts.groups !== undefined && opts.config === undefined) config = { ...config, norm_num_groups: opts.groups };
  const m = vaeMismatch(config, tensors);
  if (m.missing.length || m.wrongShape.length || m.unexpected.length) throw new DitMoeError(`is not the VAE its configuration (${origin}: block_out_channels [${config.block_out_channels.join(', ')}], ${config.latent_channels} latent channels) describes, in diffusers' names (the file uses ${naming} names): ${describeMismatch(m)}`, where);
  const weights = new Map<string, Float32Array>();
  for (const [k, v] of tensors) weights.set(k, asFloat32(v));
  return { vae: new AutoencoderKL(config, weights, kernels, where), config, naming, origin };
}
