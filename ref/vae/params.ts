/**
 * Every tensor of an AutoencoderKL in diffusers' names (`encoder.down_blocks.0.resnets.0.conv1.weight`,
 * `...mid_block.attentions.0.to_q.weight`, ...) and its shape, from the configuration alone:
 *   encoder: conv_in [b0, in, 3, 3]; level i: layers_per_block ResNet blocks (c_{i−1} → c_i, a 1×1
 *            conv_shortcut when the widths differ), a stride-2 downsampler but on the last level;
 *            mid block (ResNet, attention, ResNet); conv_norm_out; conv_out [2L, c_last, 3, 3]
 *   decoder: conv_in [c_last, L, 3, 3]; mid block; level i over the reversed widths:
 *            layers_per_block + 1 ResNet blocks, an upsampler but on the last; conv_norm_out; conv_out
 *   quant_conv [2L, 2L, 1, 1], post_quant_conv [L, L, 1, 1] when used
 */
import type { VaeConfig } from './config.js';

export interface VaeParamSpec {
  name: string;
  shape: number[];
}

export function resnetSpecs(pre: string, cin: number, cout: number): VaeParamSpec[] {
  const s: VaeParamSpec[] = [
    { name: `${pre}.norm1.weight`, shape: [cin] },
    { name: `${pre}.norm1.bias`, shape: [cin] },
    { name: `${pre}.conv1.weight`, shape: [cout, cin, 3, 3] },
    { name: `${pre}.conv1.bias`, shape: [cout] },
    { name: `${pre}.norm2.weight`, shape: [cout] },
    { name: `${pre}.norm2.bias`, shape: [cout] },
    { name: `${pre}.conv2.weight`, shape: [cout, cout, 3, 3] },
    { name: `${pre}.conv2.bias`, shape: [cout] },
  ];
  if (cin !== cout) s.push({ name: `${pre}.conv_shortcut.weight`, shape: [cout, cin, 1, 1] }, { name: `${pre}.conv_shortcut.bias`, shape: [cout] });
  return s;
}

function conv(pre: string, cout: number, cin: number, k: number): VaeParamSpec[] {
  return [
    { name: `${pre}.weight`, shape: [cout, cin, k, k] },
    { name: `${pre}.bias`, shape: [cout] },
  ];
}

function norm(pre: string, c: number): VaeParamSpec[] {
  return [
    { name: `${pre}.weight`, shape: [c] },
    { name: `${pre}.bias`, shape: [c] },
  ];
}

function midSpecs(pre: string, c: number, attention: boolean): VaeParamSpec[] {
  const s = [...resnetSpecs(`${pre}.resnets.0`, c, c)];
  if (attention) {
    s.push(...norm(`${pre}.attentions.0.group_norm`, c));
    for (const p of ['to_q', 'to_k', 'to_v', 'to_out.0']) s.push({ name: `${pre}.attentions.0.${p}.weight`, shape: [c, c] }, { name: `${pre}.attentions.0.${p}.bias`, shape: [c] });
  }
  s.push(...resnetSpecs(`${pre}.resnets.1`, c, c));
  return s;
}

export function vaeParamSpecs(c: VaeConfig): VaeParamSpec[] {
  const ch = c.block_out_channels;
  const levels = ch.length;
  const last = ch[levels - 1];
  const L = c.latent_channels;
  const s: VaeParamSpec[] = [...conv('encoder.conv_in', ch[0], c.in_channels, 3)];
  let cin = ch[0];
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < c.layers_per_block; j++) s.push(...resnetSpecs(`encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? cin : ch[i], ch[i]));
    if (i < levels - 1) s.push(...conv(`encoder.down_blocks.${i}.downsamplers.0.conv`, ch[i], ch[i], 3));
    cin = ch[i];
  }
  s.push(...midSpecs('encoder.mid_block', last, c.mid_block_add_attention), ...norm('encoder.conv_norm_out', last), ...conv('encoder.conv_out', 2 * L, last, 3));
  s.push(...conv('decoder.conv_in', last, L, 3), ...midSpecs('decoder.mid_block', last, c.mid_block_add_attention));
  const rev = [...ch].reverse();
  cin = rev[0];
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j <= c.layers_per_block; j++) s.push(...resnetSpecs(`decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? cin : rev[i], rev[i]));
    if (i < levels - 1) s.push(...conv(`decoder.up_blocks.${i}.upsamplers.0.conv`, rev[i], rev[i], 3));
    cin = rev[i];
  }
  s.push(...norm('decoder.conv_norm_out', ch[0]), ...conv('decoder.conv_out', c.out_channels, ch[0], 3));
  if (c.use_quant_conv) s.push(...conv('quant_conv', 2 * L, 2 * L, 1));
  if (c.use_post_quant_conv) s.push(...conv('post_quant_conv', L, L, 1));
  return s;
}
