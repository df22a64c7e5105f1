/** `dit-moe conform CASE --model MODEL --out RESULT [--backend ref]` and `dit-moe compare RESULT GOLDEN [--rtol R]`. */
import type { Command } from 'commander';
import { DitMoeError } from '../../ref/errors.js';
import { serializeSafetensors } from '../../io/safetensors.js';
import { runCase, compareTensors, formatCompareLine } from '../../conform/index.js';
import { readSafetensorsFile, writeFileAtomic } from '../files.js';
import { kernelsFor, backendOption, threadsOption } from '../backend.js';
import { memoryBudgetOption } from '../memoryBudget.js';
import { loadModelFile, type ModelOptions } from '../loadModel.js';
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
    .option('--weights <which>', 'for a training checkpoint: model or ema (default for .pt: ema if present)')
    .requiredOption('--out <file>', 'result file (.safetensors)')
    .addOption(backendOption('ref'))
    .addOption(threadsOption())
    .addOption(memoryBudgetOption())
    .action(async (casePath: string, o: { model?: string; out: string; backend: string; threads?: number } & ModelOptions) => {
      const kase = readSafetensorsFile(casePath);
      const kernels = await kernelsFor(o.backend, o.threads);
      // the case's config fills what a config-less model file (a .pt) leaves open
      const model: DiTModel | undefined = o.model ? await loadModelFile(o.model, kernels, { ...o, fallback: caseConfig(kase.metadata) }) : undefined;
      const outs = runCase(kase, {
        kernels,
        where: casePath,
        model: () => {
          if (!model) throw new DitMoeError(`case kind '${kase.metadata.kind}' needs a model: pass --model`, casePath);
          return model;
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
    .option('--rtol <r>', 'tolerance relative to max(1, max|golden|) for every tensor (default: by kind of tensor)', parseFloat)
    .option('--only-present', 'skip golden tensors the result does not have')
    .action((resultPath: string, goldenPath: string, o: { rtol?: number; onlyPresent?: boolean }) => {
      if (o.rtol !== undefined && !(o.rtol >= 0)) throw new DitMoeError(`${o.rtol} is not a tolerance ≥ 0`, '--rtol');
      const lines = compareTensors(readSafetensorsFile(resultPath), readSafetensorsFile(goldenPath), o.rtol).filter((l) => !(o.onlyPresent && l.status === 'missing'));
      for (const l of lines) process.stdout.write(formatCompareLine(l) + '\n');
      const failed = lines.filter((l) => l.status !== 'pass').length;
      process.stdout.write(`${lines.length - failed} passed, ${failed} failed\n`);
      if (failed) process.exitCode = 1;
    });
}
