/** `dit-moe convert IN OUT`: PyTorch .pt ⇄ safetensors, chosen by the file extensions. */
import type { Command } from 'commander';
import { DitMoeError } from '../../ref/errors.js';
import { ptToSafetensors, safetensorsToPt, type ConvertOptions } from '../../io/pt/convert.js';
import { readBytes, writeFileAtomic } from '../files.js';

const PT = /\.(pt|pth|ckpt)$/i;
const ST = /\.safetensors$/i;

/** Converts the file `input` into `output`; the direction follows the extensions. */
export function convertFile(input: string, output: string, opts: ConvertOptions = {}): void {
  let out: Uint8Array;
  if (PT.test(input) && ST.test(output)) out = ptToSafetensors(readBytes(input), input, opts);
  else if (ST.test(input) && PT.test(output)) out = safetensorsToPt(readBytes(input), input, opts);
  else throw new DitMoeError(`cannot tell the direction from the extensions: convert .pt/.pth/.ckpt → .safetensors or .safetensors → .pt/.pth`, `convert ${input} ${output}`);
  writeFileAtomic(output, out);
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a PyTorch checkpoint (.pt) to safetensors or back, chosen by the extensions')
    .argument('<in>', 'input file (.pt/.pth/.ckpt or .safetensors)')
    .argument('<out>', 'output file (.safetensors or .pt/.pth/.ckpt)')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default: ema if present)')
    .option('--nest <key>', 'for .pt output: nest the state dict under this key (e.g. ema) and keep the config next to it')
    .action((input: string, output: string, o: { weights?: string; nest?: string }) => {
      if (o.weights !== undefined && o.weights !== 'model' && o.weights !== 'ema') throw new DitMoeError(`must be model or ema, not '${o.weights}'`, '--weights');
      convertFile(input, output, { weights: o.weights as 'model' | 'ema' | undefined, nestUnder: o.nest });
      process.stdout.write(`wrote ${output}\n`);
    });
}
