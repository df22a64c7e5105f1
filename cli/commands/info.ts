/** `dit-moe info FILE` or `dit-moe info --preset S/2 --experts 8`: configuration, parameters, compute. */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import { DitMoeError } from '../../core/errors.js';
import { presetConfig, type DiTConfig } from '../../ref/config.js';
import { accounting, humanCount } from '../../ref/accounting.js';
import { readModelWeights, openModelWeights, resolveModelConfig, parseConfigFields, type ResolvedConfig } from '../loadModel.js';
import { positiveInt } from '../options.js';

/** Files up to this size have every value read and checked finite (about a second of reading). */
const CHECK_VALUES_UP_TO = 2 ** 30;

/** For an inferred configuration: where the fields the shapes do not show came from. */
function sourcesLine(r: ResolvedConfig): string {
  const by = new Map<string, string[]>();
  for (const [k, s] of Object.entries(r.sources)) if (s !== 'inferred' && s !== 'file') by.set(s, [...(by.get(s) ?? []), `${k} ${s === 'unknown' ? '' : JSON.stringify(r.config[k as keyof DiTConfig])}`.trim()]);
  const label: Record<string, string> = { preset: `the preset table (${r.preset ?? ''})`, given: '--config', default: 'official defaults', unknown: 'unknown (not in the file; the counts below do not depend on it)' };
  return `configuration: ${r.origin}${r.preset ? `, matching preset ${r.preset}` : ''}${[...by].map(([s, ks]) => `; ${label[s] ?? s}: ${ks.join(', ')}`).join('')}`;
}

/** Multiply-accumulates at a readable scale: GMAC, MMAC or kMAC (a small model is not "0.00 GMAC"). */
export function formatMacs(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GMAC`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MMAC`;
  return `${(n / 1e3).toFixed(2)} kMAC`;
}

function describe(c: DiTConfig, unknownHeads = false): string {
  const a = accounting(c);
  const img = c.input_size * (c.in_channels === 4 ? 8 : 1);
  return [
    `config: ${JSON.stringify(unknownHeads ? { ...c, num_heads: null } : c)}`,
    `parameters: ${humanCount(a.totalParams)} total (${a.totalParams}), ${humanCount(a.activatedParams)} activated per token (${a.activatedParams}; ${c.num_experts_per_tok} of ${c.num_experts} experts)`,
    `compute per image (${c.input_size}×${c.input_size}×${c.in_channels}${c.in_channels === 4 ? `, a ${img}×${img} image through the VAE` : ''}): ${formatMacs(a.linearMacs)} in linear layers + ${formatMacs(a.attentionMacs)} in attention (q·kᵀ, P·v)`,
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('info')
    .description('configuration, parameter counts (total, activated) and MACs per image of a model file or preset')
    .argument('[file]', 'model file (.safetensors or .pt)')
    .option('--preset <name>', 'a preset: S/2 S/4 S/8 B/2 B/4 B/8 L/2 L/4 L/8 XL/2 XL/4 XL/8 G/2')
    .option('--experts <n>', 'number of routed experts for --preset', positiveInt('--experts'))
    .option('--top-k <k>', 'experts per token for --preset', positiveInt('--top-k'))
    .option('--input-size <n>', 'latent side for --preset (32 = a 256×256 image)', positiveInt('--input-size'))
    .option('--config <json|file>', 'configuration fields (any subset) when the file has none or to override it')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default: ema when present, as the official find_model)')
    .option('--allow-nonfinite', 'read weights holding NaN or infinities (to inspect them)')
    .action(async (file: string | undefined, o: { preset?: string; experts?: number; topK?: number; inputSize?: number; config?: string; weights?: string; allowNonfinite?: boolean }) => {
      if (!file && !o.preset) throw new DitMoeError('name a model file or --preset', 'info');
      if (!file && o.weights !== undefined) throw new DitMoeError('picks the weights of a model file; a --preset has none', '--weights');
      if (file) for (const [v, flag] of [[o.experts, '--experts'], [o.topK, '--top-k'], [o.inputSize, '--input-size']] as const) if (v !== undefined) throw new DitMoeError(`shapes a --preset; a model file has its own (state fields with --config)`, flag);
      if (!file) {
        const over: Partial<DiTConfig> = o.config !== undefined ? parseConfigFields(o.config) : {};
        if (o.experts !== undefined) over.num_experts = o.experts;
        if (o.topK !== undefined) over.num_experts_per_tok = o.topK;
        if (o.inputSize !== undefined) over.input_size = o.inputSize;
        const c = presetConfig(o.preset!, over);
        process.stdout.write(`preset DiT-MoE-${o.preset}-${c.num_experts}E${c.num_experts_per_tok}A\n${describe(c)}\n`);
        return;
      }
      const notes: string[] = [];
      const opts = { ...o, note: (l: string) => notes.push(l.replace(/^note: /, '')) };
      // the header or zip directory only: no tensor is read ...
      const { file: opened, source, fileTensors } = await openModelWeights(file, opts);
      source.close();
      const { tensors, metadata } = opened;
      // ... but a file that reads in about a second has every value read too: NaN or infinite weights are refused here as at load
      if (source.size <= CHECK_VALUES_UP_TO) await readModelWeights(file, { ...opts, note: () => {} });
      else if (!o.allowNonfinite) notes.push(`values not read (${(source.size / 2 ** 30).toFixed(1)} GiB): not checked for NaN or infinities here; sample and conform check each tensor as they load it`);
      const r = resolveModelConfig(file, tensors, metadata, o, 'unknown');
      const dtypes = new Map<string, number>();
      for (const t of tensors.values()) dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + 1);
      const count = fileTensors !== undefined && fileTensors !== tensors.size ? `${tensors.size} of its ${fileTensors} tensors are the model` : `${tensors.size} tensors`;
      const objective = metadata.objective ? `${metadata.objective} (from the file)` : `not stated in the file (sample and analyze default to ${r.config.learn_sigma ? 'ddpm' : 'flow'}, as learn_sigma is ${r.config.learn_sigma})`;
      const lines = [`file: ${file} (${(fs.statSync(file).size / 1e6).toFixed(2)} MB on disk, ${count}, dtype ${[...dtypes].map(([d, n]) => `${d} ×${n}`).join(', ')})`, ...notes, sourcesLine(r), `objective: ${objective}`, describe(r.config, r.sources.num_heads === 'unknown')];
      if (metadata.step !== undefined) lines.push(`training step: ${metadata.step}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
