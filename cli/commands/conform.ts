/** `dit-moe conform CASE --model MODEL --out RESULT [--backend ref]` and `dit-moe compare RESULT GOLDEN [--rtol R]`. */
import type { Command } from 'commander';
import { DitMoeError } from '../../core/errors.js';
import { numberArg } from '../options.js';
import { serializeSafetensors } from '../../io/safetensors.js';
import { runCase, compareTensors, formatCompareLine } from '../../conform/index.js';
import { readSafetensorsFile, writeFileAtomic } from '../../node/files.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { loadModelFile, type ModelOptions } from '../loadModel.js';
import { readStateFile } from '../vaeFiles.js';
import { refuseOverwritingInputs } from '../../node/outputs.js';
import type { DiTModel } from '../../ref/model.js';
import type { DiTConfig } from '../../ref/config.js';

/** The case file's __metadata__.config as plain fields (ignored when absent or not JSON: the model file may not need it). */
function caseConfig(metadata: Record<string, string>): Partial<DiTConfig> | undefined {
  try {
    const c: unknown = JSON.parse(metadata.config ?? '');
    return typeof c === 'object' && c !== null && !Array.isArray(c) ? (c as Partial<DiTConfig>) : undefined;
  } catch {
    return undefined;
  }
}

export function register(program: Command): void {
  program
    .command('conform')
    .description('run a conformance case (golden format) and write every output it computes')
    .argument('<case>', 'case file (.safetensors with __metadata__.kind and in.* tensors)')
    .option('--model <file>', 'model weights (.safetensors with __metadata__.config, or .pt)')
    .option('--config <json|file>', 'model configuration when the model file has none')
    .option('--preset <name>', 'model preset when the model file has no configuration')
    .option('--weights <which>', 'for a training checkpoint: model or ema (default: ema when present, as the official find_model)')
    .option('--encoder <file>', 'kind taesd: the TAESD encoder (--model is the decoder)')
    .requiredOption('--out <file>', 'result file (.safetensors)')
    .addOption(backendOption('ref'))
    .addOption(threadsOption())
    .addOption(memoryBudgetOption())
    .option('--allow-nonfinite', 'load weights holding NaN or infinities (to inspect them)')
    .action(async (casePath: string, o: { model?: string; encoder?: string; out: string; backend: string; threads?: number } & ModelOptions) => {
      if (!/\.safetensors$/i.test(o.out)) throw new DitMoeError('must end in .safetensors (the result is a safetensors file)', '--out');
      refuseOverwritingInputs([['--out', o.out]], [['<case>', casePath], ['--model', o.model], ['--encoder', o.encoder], ['--config', o.config]]);
      const kase = readSafetensorsFile(casePath);
      const kernels = await kernelsFor(o.backend, o.threads);
      // kinds vae and taesd read their own files (conform/vae.ts); the others a DiT-MoE
      const own = kase.metadata.kind === 'vae' || kase.metadata.kind === 'taesd';
      const states = own ? { model: o.model ? await readStateFile(o.model) : undefined, encoder: o.encoder ? await readStateFile(o.encoder) : undefined } : {};
      // the case's config fills what a config-less model file (a .pt) leaves open
      const model: DiTModel | undefined = o.model && !own ? await loadModelFile(o.model, kernels, { ...o, fallback: caseConfig(kase.metadata) }) : undefined;
      const outs = runCase(kase, {
        kernels,
        where: casePath,
        model: () => {
          if (!model) throw new DitMoeError(`case kind '${kase.metadata.kind}' needs a model: pass --model`, casePath);
          return model;
        },
        files: (which) => {
          const f = states[which];
          if (!f) throw new DitMoeError(`case kind '${kase.metadata.kind}' needs --${which}`, casePath);
          return f;
        },
      });
      const metadata: Record<string, string> = { kind: kase.metadata.kind ?? '', source: `dit-moe conform (backend ${kernels.name})` };
      writeFileAtomic(o.out, serializeSafetensors([...outs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)), metadata));
      process.stdout.write(`wrote ${outs.size} tensors to ${o.out}\n`);
    });

  program
    .command('compare')
    .description('compare a result with a golden file, one line per tensor; exit 1 if any fails')
    .argument('<result>', 'result file from dit-moe conform')
    .argument('<golden>', 'golden file')
    .option('--rtol <r>', 'tolerance relative to max(1, max|golden|) for every tensor (default: by kind of tensor)', numberArg('--rtol'))
    .option('--only-present', 'skip golden tensors the result does not have')
    .action((resultPath: string, goldenPath: string, o: { rtol?: number; onlyPresent?: boolean }) => {
      if (o.rtol !== undefined && !(o.rtol >= 0 && Number.isFinite(o.rtol))) throw new DitMoeError(`${o.rtol} is not a finite tolerance ≥ 0`, '--rtol');
      const lines = compareTensors(readSafetensorsFile(resultPath), readSafetensorsFile(goldenPath), o.rtol).filter((l) => !(o.onlyPresent && l.status === 'missing'));
      // comparing nothing is not a pass
      if (!lines.length) throw new DitMoeError(o.onlyPresent ? `the result holds none of the golden file's output tensors` : 'has no output tensors (out.*, grad.*, ...) to compare against', o.onlyPresent ? resultPath : goldenPath);
      for (const l of lines) process.stdout.write(formatCompareLine(l) + '\n');
      const failed = lines.filter((l) => l.status !== 'pass').length;
      process.stdout.write(`${lines.length - failed} passed, ${failed} failed\n`);
      if (failed) process.exitCode = 1;
    });
}
