/**
 * The configuration of diffusers' `AutoencoderKL` (the Stable Diffusion VAE), the fields of its
 * `config.json` that change the network. `sd-vae-ft-mse`: block_out_channels [128, 256, 512, 512],
 * layers_per_block 2, 32 groups, 4 latent channels, scaling 0.18215.
 */
import { DitMoeError } from '../../core/errors.js';

export interface VaeConfig {
  in_channels: number;
  out_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  latent_channels: number;
  norm_num_groups: number;
  scaling_factor: number;
  /** Latents are (z − shift)·scale; null or 0 for the SD VAE. */
  shift_factor: number | null;
  use_quant_conv: boolean;
  use_post_quant_conv: boolean;
  mid_block_add_attention: boolean;
}

export const DEFAULT_VAE_CONFIG: VaeConfig = {
  in_channels: 3,
  out_channels: 3,
  block_out_channels: [128, 256, 512, 512],
  layers_per_block: 2,
  latent_channels: 4,
  norm_num_groups: 32,
  scaling_factor: 0.18215,
  shift_factor: null,
  use_quant_conv: true,
  use_post_quant_conv: true,
  mid_block_add_attention: true,
};

/** GroupNorm epsilon of every norm in the VAE (diffusers: resnet_eps = 1e-6). */
export const VAE_EPS = 1e-6;

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;

/**
 * A VaeConfig from a diffusers config object (unknown keys such as `_class_name` ignored; missing
 * ones take the SD defaults). Only the architecture we implement is accepted: DownEncoderBlock2D /
 * UpDecoderBlock2D blocks, SiLU, group norm.
 */
export function vaeConfigFrom(obj: unknown, where: string): VaeConfig {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DitMoeError('the VAE configuration is not a JSON object', where);
  const o = obj as Record<string, unknown>;
  const c: VaeConfig = { ...DEFAULT_VAE_CONFIG, block_out_channels: [...DEFAULT_VAE_CONFIG.block_out_channels] };
  const fail = (msg: string): never => {
    throw new DitMoeError(`VAE configuration: ${msg}`, where);
  };
  for (const k of ['in_channels', 'out_channels', 'layers_per_block', 'latent_channels', 'norm_num_groups'] as const) {
    if (o[k] === undefined) continue;
    if (!posInt(o[k])) fail(`${k} = ${JSON.stringify(o[k])}, expected a positive integer`);
    c[k] = o[k] as number;
  }
  if (o.block_out_channels !== undefined) {
    if (!Array.isArray(o.block_out_channels) || o.block_out_channels.length < 1 || !o.block_out_channels.every(posInt)) fail(`block_out_channels = ${JSON.stringify(o.block_out_channels)}, expected a list of positive integers`);
    c.block_out_channels = [...(o.block_out_channels as number[])];
  }
  if (o.scaling_factor !== undefined) {
    if (typeof o.scaling_factor !== 'number' || !(o.scaling_factor > 0) || !Number.isFinite(o.scaling_factor)) fail(`scaling_factor = ${JSON.stringify(o.scaling_factor)}, expected a positive number`);
    c.scaling_factor = o.scaling_factor as number;
  }
  if (o.shift_factor !== undefined && o.shift_factor !== null) {
    if (typeof o.shift_factor !== 'number' || !Number.isFinite(o.shift_factor)) fail(`shift_factor = ${JSON.stringify(o.shift_factor)}, expected a number or null`);
    c.shift_factor = o.shift_factor as number;
  }
  for (const k of ['use_quant_conv', 'use_post_quant_conv', 'mid_block_add_attention'] as const) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== 'boolean') fail(`${k} = ${JSON.stringify(o[k])}, expected true or false`);
    c[k] = o[k] as boolean;
  }
  const levels = c.block_out_channels.length;
  for (const [k, want] of [['down_block_types', 'DownEncoderBlock2D'], ['up_block_types', 'UpDecoderBlock2D']] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length !== levels || !v.every((t) => t === want)) fail(`${k} = ${JSON.stringify(v)}: only ${levels} × ${want} (the Stable Diffusion VAE) is implemented`);
  }
  if (o.act_fn !== undefined && o.act_fn !== 'silu') fail(`act_fn = ${JSON.stringify(o.act_fn)}: only silu is implemented`);
  if (o.norm_type !== undefined && o.norm_type !== 'group') fail(`norm_type = ${JSON.stringify(o.norm_type)}: only group is implemented`);
  checkVaeConfig(c, where);
  return c;
}

/** Throws unless every GroupNorm's channels split into norm_num_groups groups. */
export function checkVaeConfig(c: VaeConfig, where: string): void {
  for (const ch of c.block_out_channels)
    if (ch % c.norm_num_groups !== 0) throw new DitMoeError(`VAE configuration: ${ch} channels (block_out_channels) do not split into norm_num_groups = ${c.norm_num_groups} groups`, where);
}

/** The spatial factor between image and latent: 2^(levels − 1). */
export function vaeFactor(c: VaeConfig): number {
  return 2 ** (c.block_out_channels.length - 1);
}
