/** `dit-moe info FILE` or `dit-moe info --preset S/2 --experts 8`: configuration, parameters, compute. */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import { DitMoeError } from '../../ref/errors.js';
import { presetConfig, type DiTConfig } from '../../ref/config.js';
import { accounting, humanCount } from '../../ref/accounting.js';
import { openModelWeights, resolveModelConfig, type ResolvedConfig } from '../loadModel.js';

/** For an inferred configuration: where the fields the shapes do not show came from. */
function sourcesLine(r: ResolvedConfig): string {
  const by = new Map<string, string[]>();
  for (const [k, s] of Object.entries(r.sources)) if (s !== 'inferred' && s !== 'file') by.set(s, [...(by.get(s) ?? []), `${k} ${s === 'unknown' ? '' : JSON.stringify(r.config[k as keyof DiTConfig])}`.trim()]);
  const label: Record<string, string> = { preset: `the preset table (${r.preset ?? ''})`, given: '--config', default: 'official defaults', unknown: 'unknown (not in the file; the counts below do not depend on it)' };
  return `configuration: ${r.origin}${r.preset ? `, matching preset ${r.preset}` : ''}${[...by].map(([s, ks]) => `; ${label[s] ?? s}: ${ks.join(', ')}`).join('')}`;
}

function describe(c: DiTConfig, unknownHeads = false): string {
  const a = accounting(c);
  const img = c.input_size * (c.in_channels === 4 ? 8 : 1);
  return [
    `config: ${JSON.stringify(unknownHeads ? { ...c, num_heads: null } : c)}`,
    `parameters: ${humanCount(a.totalParams)} total (${a.totalParams}), ${humanCount(a.activatedParams)} activated per token (${a.activatedParams}; ${c.num_experts_per_tok} of ${c.num_experts} experts)`,
    `compute per image (${c.input_size}×${c.input_size}×${c.in_channels}${c.in_channels === 4 ? `, a ${img}×${img} image through the VAE` : ''}): ${(a.linearMacs / 1e9).toFixed(2)} GMAC in linear layers + ${(a.attentionMacs / 1e9).toFixed(2)} GMAC in attention (q·kᵀ, P·v)`,
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('info')
    .description('configuration, parameter counts (total, activated) and MACs per image of a model file or preset')
    .argument('[file]', 'model file (.safetensors or .pt)')
    .option('--preset <name>', 'a preset: S/2 S/4 S/8 B/2 B/4 B/8 L/2 L/4 L/8 XL/2 XL/4 XL/8 G/2')
    .option('--experts <n>', 'number of routed experts for --preset', (v) => parseInt(v, 10))
    .option('--top-k <k>', 'experts per token for --preset', (v) => parseInt(v, 10))
    .option('--input-size <n>', 'latent side for --preset (32 = a 256×256 image)', (v) => parseInt(v, 10))
    .option('--config <json|file>', 'configuration fields (any subset) when the file has none or to override it')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default for .pt: ema if present)')
    .action(async (file: string | undefined, o: { preset?: string; experts?: number; topK?: number; inputSize?: number; config?: string; weights?: string }) => {
      if (!file && !o.preset) throw new DitMoeError('name a model file or --preset', 'info');
      if (!file) {
        const over: Partial<DiTConfig> = {};
        if (o.experts !== undefined) over.num_experts = o.experts;
        if (o.topK !== undefined) over.num_experts_per_tok = o.topK;
        if (o.inputSize !== undefined) over.input_size = o.inputSize;
        const c = presetConfig(o.preset!, over);
        process.stdout.write(`preset DiT-MoE-${o.preset}-${c.num_experts}E${c.num_experts_per_tok}A\n${describe(c)}\n`);
        return;
      }
      const { file: opened, source } = await openModelWeights(file, o); // the header or directory only: no tensor is read
      source.close();
      const { tensors, metadata } = opened;
      const r = resolveModelConfig(file, tensors, metadata, o, 'unknown');
      const dtypes = new Map<string, number>();
      for (const t of tensors.values()) dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + 1);
      const lines = [`file: ${file} (${(fs.statSync(file).size / 1e6).toFixed(2)} MB on disk, ${tensors.size} tensors, dtype ${[...dtypes].map(([d, n]) => `${d} ×${n}`).join(', ')})`, sourcesLine(r), describe(r.config, r.sources.num_heads === 'unknown')];
      if (metadata.step !== undefined) lines.push(`training step: ${metadata.step}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
