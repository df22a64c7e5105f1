/** `dit-moe convert IN OUT`: PyTorch .pt ⇄ safetensors, chosen by the file extensions. */
import type { Command } from 'commander';
import { DitMoeError } from '../../core/errors.js';
import { ptToSafetensors, safetensorsToPt, type ConvertOptions } from '../../io/pt/convert.js';
import { parseSafetensors, serializeSafetensors, type StTensor } from '../../io/safetensors.js';
import { readBytes, writeFileAtomic } from '../../node/files.js';
import { trainingCheckpointToPt } from '../official.js';
import { resolveModelConfig, defaultedNote, pickWeights, type ModelOptions } from '../loadModel.js';
import { refuseOverwritingInputs } from '../../node/outputs.js';
import { checkFiniteTensors } from '../finite.js';

const PT = /\.(pt|pth|ckpt)$/i;
const ST = /\.safetensors$/i;

/**
 * Stores every floating-point tensor of a safetensors file as `dtype` (F32, F16 or BF16). A
 * training checkpoint of ours (`ema.*`, `adam_*` beside the weights) becomes a model file of
 * one set of weights: `weights`, by default the EMA when there is one.
 */
export function castSafetensors(bytes: Uint8Array, dtype: 'F32' | 'F16' | 'BF16', where: string, weights?: 'model' | 'ema'): Uint8Array {
  const st = parseSafetensors(bytes, where);
  const hasEma = [...st.tensors.keys()].some((k) => k.startsWith('ema.'));
  if (weights === undefined && hasEma) process.stderr.write(`note: ${where} is a training checkpoint; writing its EMA weights (--weights model for the raw ones)\n`);
  const tensors = pickWeights(st.tensors, weights ?? (hasEma ? 'ema' : 'model'), where);
  const entries = [...tensors.entries()].map(([name, t]): [string, StTensor] => [name, t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F64' ? { ...t, dtype, data: Float32Array.from(t.data as ArrayLike<number>) } : t]);
  return serializeSafetensors(entries, st.metadata);
}

/**
 * Converts the file `input` into `output`; the direction follows the extensions. With `dtype`,
 * a safetensors output stores its floating-point tensors in that type (safetensors → safetensors
 * is then allowed: a cast).
 */
export function convertFile(input: string, output: string, opts: ConvertOptions & { dtype?: 'F32' | 'F16' | 'BF16'; allowNonfinite?: boolean } = {}): void {
  let out: Uint8Array;
  if (PT.test(input) && ST.test(output)) out = ptToSafetensors(readBytes(input), input, opts);
  else if (ST.test(input) && PT.test(output)) {
    const bytes = readBytes(input);
    out = trainingCheckpointToPt(bytes, input, opts) ?? safetensorsToPt(bytes, input, opts); // our training checkpoints: cli/official.ts
  }
  else if (ST.test(input) && ST.test(output) && opts.dtype) out = readBytes(input);
  else throw new DitMoeError(`cannot tell the direction from the extensions: convert .pt/.pth/.ckpt → .safetensors, .safetensors → .pt/.pth, or .safetensors → .safetensors with --dtype`, `convert ${input} ${output}`);
  if (opts.dtype && ST.test(output)) out = castSafetensors(out, opts.dtype, input, opts.weights);
  // the weights are checked on the safetensors side (the input's or the output's)
  if (!opts.allowNonfinite) checkFiniteTensors(parseSafetensors(ST.test(input) ? readBytes(input) : out, input).tensors, input);
  writeFileAtomic(output, out);
}

/**
 * The configuration to write, as JSON: a stated --preset/--config (checked against the tensors;
 * a mismatch is an error naming them), else the input's own, else inferred from the tensor
 * shapes. When nothing is stated and inference cannot tell, the file is converted without a
 * configuration and a note says why.
 */
export function configHook(file: string, o: ModelOptions): (sd: Map<string, StTensor>, existing?: string) => string | undefined {
  const stated = o.preset !== undefined || o.config !== undefined;
  const note = o.note ?? ((l: string) => process.stderr.write(l + '\n'));
  return (sd, existing) => {
    try {
      const r = resolveModelConfig(file, sd, existing !== undefined ? { config: existing } : {}, o);
      const n = defaultedNote(file, r);
      if (n) note(n);
      return JSON.stringify(r.config);
    } catch (e) {
      if (stated || existing !== undefined || !(e instanceof DitMoeError)) throw e;
      note(`note: no configuration written (${e.message})`);
      return undefined;
    }
  };
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a PyTorch checkpoint (.pt) to safetensors or back, chosen by the extensions; a training checkpoint of ours becomes the official train.py checkpoint')
    .argument('<in>', 'input file (.pt/.pth/.ckpt or .safetensors)')
    .argument('<out>', 'output file (.safetensors or .pt/.pth/.ckpt)')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default: ema if present)')
    .option('--nest <key>', 'for .pt output: nest the state dict under this key (e.g. ema) and keep the config next to it')
    .option('--preset <name>', 'state the configuration (checked against the tensors) instead of inferring it')
    .option('--config <json|file>', 'configuration fields (any subset): what inference cannot tell (e.g. num_heads) or overrides')
    .option('--dtype <type>', 'for .safetensors output: store floating-point tensors as f32, f16 or bf16')
    .option('--allow-nonfinite', 'convert weights holding NaN or infinities')
    .action((input: string, output: string, o: { weights?: string; nest?: string; preset?: string; config?: string; dtype?: string; allowNonfinite?: boolean }) => {
      if (o.weights !== undefined && o.weights !== 'model' && o.weights !== 'ema') throw new DitMoeError(`must be model or ema, not '${o.weights}'`, '--weights');
      const dtype = o.dtype?.toUpperCase();
      if (dtype !== undefined && dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new DitMoeError(`must be f32, f16 or bf16, not '${o.dtype}'`, '--dtype');
      if (dtype !== undefined && !ST.test(output)) throw new DitMoeError(`sets the dtype of a .safetensors output; ${output} keeps the stored types`, '--dtype');
      if (o.nest !== undefined && !PT.test(output)) throw new DitMoeError(`nests the state dict of a .pt output; ${output} has no nesting`, '--nest');
      refuseOverwritingInputs([['<out>', output]], [['<in>', input], ['--config', o.config]]);
      const replaceConfig = o.preset !== undefined || o.config !== undefined;
      convertFile(input, output, { weights: o.weights as 'model' | 'ema' | undefined, nestUnder: o.nest, inferConfigJson: configHook(input, o), replaceConfig, dtype, allowNonfinite: o.allowNonfinite });
      process.stdout.write(`wrote ${output}\n`);
    });
}
