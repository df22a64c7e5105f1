/** `dit-moe upcycle IN --experts 8 OUT`: more experts from a checkpoint with fewer, as the official upcycle.py (ref/upcycle.ts). */
import type { Command } from 'commander';
import { DitMoeError } from '../../core/errors.js';
import { upcycle } from '../../ref/upcycle.js';
import { serializeSafetensors } from '../../io/safetensors.js';
import { writePtCheckpoint } from '../../io/pt/checkpoint.js';
import { writeFileAtomic } from '../../node/files.js';
import { readModelWeights, resolveModelConfig, defaultedNote, type ModelOptions } from '../loadModel.js';
import { refuseOverwritingInputs } from '../../node/outputs.js';
import { checkBytes, weightBytes } from '../limits.js';
import { CONFIG_LIMITS } from '../../ref/config.js';

function integer(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new DitMoeError(`'${v}' is not an integer ≥ ${min}`, name);
    return n;
  };
}

export function register(program: Command): void {
  program
    .command('upcycle')
    .description('upcycle a checkpoint to more experts (official upcycle.py): copies every tensor, new experts copy expert 0, routers N(0, 0.02)')
    .argument('<in>', 'source model (.safetensors or .pt) with fewer experts')
    .argument('<out>', 'result: .safetensors (with the configuration) or .pt (a state dict, as upcycle.py writes)')
    .requiredOption('--experts <n>', `experts of the result (at most ${CONFIG_LIMITS.num_experts})`, integer('--experts', 2))
    .option('--top-k <k>', "experts per token of the result (default: the source's, at least 2)", integer('--top-k', 1))
    .option('--seed <n>', 'seed of the router initialisation', integer('--seed', 0), 0)
    .option('--nest <key>', 'for .pt output: nest the state dict under this key (e.g. ema) with the configuration next to it')
    .option('--config <json|file>', 'source configuration fields (any subset) when the file has none')
    .option('--preset <name>', 'source preset when the file has no configuration')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default: ema when present, as the official find_model)')
    .option('--allow-nonfinite', 'load weights holding NaN or infinities (to inspect them)')
    .action(async (input: string, output: string, o: { experts: number; topK?: number; seed: number; nest?: string } & ModelOptions) => {
      const toPt = /\.(pt|pth|ckpt)$/i.test(output);
      if (!toPt && !/\.safetensors$/i.test(output)) throw new DitMoeError('must end in .safetensors or .pt', output);
      if (o.experts > CONFIG_LIMITS.num_experts) throw new DitMoeError(`'${o.experts}' is too many: at most ${CONFIG_LIMITS.num_experts} experts (a stated limit)`, '--experts');
      if (!toPt && o.nest !== undefined) throw new DitMoeError('nests a .pt state dict; a .safetensors output has no nesting', '--nest');
      refuseOverwritingInputs([['<out>', output]], [['<in>', input], ['--config', o.config]]);
      const { tensors, metadata } = await readModelWeights(input, o);
      const src = resolveModelConfig(input, tensors, metadata, o);
      checkBytes(weightBytes({ ...src.config, num_experts: o.experts }), `the upcycled model of ${o.experts} experts`, '--experts');
      const note = defaultedNote(input, src);
      if (note) process.stderr.write(note + '\n');
      const r = upcycle(tensors, src.config, { experts: o.experts, topK: o.topK, seed: o.seed }, input);
      const config = JSON.stringify(r.config);
      const bytes = toPt
        ? writePtCheckpoint(r.tensors, o.nest !== undefined ? { nestUnder: o.nest, scalars: { config } } : {})
        : serializeSafetensors(r.tensors, { config, upcycled_from: input.split(/[\\/]/).pop() ?? input, upcycle_seed: String(o.seed) });
      writeFileAtomic(output, bytes);
      const { copied, fromExpert0, initialised } = r.report;
      process.stdout.write(
        `upcycled ${src.config.num_experts} → ${r.config.num_experts} experts (top-${r.config.num_experts_per_tok}): ${copied.length} tensors copied, ${fromExpert0.length} new expert tensors copied from experts.0, ${initialised.length} routers drawn from N(0, 0.02) (seed ${o.seed})\nwrote ${output}\n`,
      );
    });
}
