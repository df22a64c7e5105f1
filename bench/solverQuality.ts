/**
 * Quality per model evaluation (docs/solvers.md): for one model, a list of sampler settings at one
 * guidance scale, each scored on the same samples (perClass per class, the start noise of
 * `dit-moe eval --seed`) by
 *   the 1-NN accuracy and mean nearest-neighbour distance of `dit-moe eval` (train/eval.ts), and
 *   the RMS pixel difference to a reference setting solved almost exactly from the same noise
 *   (how far the setting is from the picture the ODE defines; '—' for DDPM ancestral, whose
 *   samples are not the ODE's).
 *
 *   node dist/bench/solverQuality.js --model FILE [--cfg 2] [--samples 100] [--threads 2]
 *       [--reference heun:50] [--out table.md] SETTING...
 *   SETTING = sampler[/spacing][/order]:steps,steps,...   e.g. flow:5,10,30 dpm++2m/logSNR:10,20
 *
 * Prints one markdown row per setting as it finishes (and writes the table to --out).
 */
import { parseArgs } from 'node:util';
import { createWasmKernels } from '../wasm/node.js';
import { loadModelWithMetadata } from '../cli/loadModel.js';
import { loadDataset } from '../train/data.js';
import { generateSamples, evaluateSamples, type SampleSettings } from '../train/eval.js';
import { SAMPLERS, SAMPLER_LABELS, SPACINGS, modelEvaluations, type SamplerName } from '../ref/diffusion/sampling.js';
import type { DpmSkipType } from '../ref/diffusion/dpmSolver.js';
import type { Objective } from '../train/presets.js';
import { writeFileAtomic } from '../node/files.js';

interface Setting {
  sampler: SamplerName;
  spacing?: DpmSkipType;
  order?: number;
  steps: number;
}

/** `sampler[/spacing][/order]:n,n,...` → one setting per step count. */
function parseSettings(text: string): Setting[] {
  const m = /^([^:]+):([\d,]+)$/.exec(text);
  if (!m) throw new Error(`'${text}' is not sampler[/spacing][/order]:steps,steps`);
  const [name, ...opts] = m[1].split('/');
  if (!(SAMPLERS as readonly string[]).includes(name)) throw new Error(`unknown sampler '${name}' in '${text}' (${SAMPLERS.join(', ')})`);
  let spacing: DpmSkipType | undefined;
  let order: number | undefined;
  for (const o of opts) {
    if ((SPACINGS as readonly string[]).includes(o)) spacing = o as DpmSkipType;
    else if (/^[123]$/.test(o)) order = Number(o);
    else throw new Error(`'${o}' in '${text}' is neither a spacing (${SPACINGS.join(', ')}) nor an order`);
  }
  return m[2].split(',').filter(Boolean).map((n) => ({ sampler: name as SamplerName, spacing, order, steps: Number(n) }));
}

function label(s: Setting): string {
  const extra = [s.spacing, s.order !== undefined ? `order ${s.order}` : undefined].filter(Boolean).join(', ');
  const name = s.sampler === 'flow' ? 'Euler' : s.sampler === 'heun' ? 'Heun' : SAMPLER_LABELS[s.sampler];
  return extra ? `${name} (${extra})` : name;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    cfg: { type: 'string', default: '2' },
    samples: { type: 'string', default: '100' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string', default: '2' },
    reference: { type: 'string' },
    out: { type: 'string' },
  },
});
if (!values.model || positionals.length === 0) {
  process.stderr.write('usage: node dist/bench/solverQuality.js --model FILE [--cfg 2] [--samples 100] [--reference sampler:steps] [--out table.md] SETTING...\n');
  process.exit(2);
}
const kernels = await createWasmKernels({ threads: Number(values.threads) });
const { model, metadata } = await loadModelWithMetadata(values.model, kernels, { weights: undefined, progress: null });
const objective = (metadata.objective ?? 'flow') as Objective;
const cfg = Number(values.cfg);
const seed = Number(values.seed);
const data = loadDataset('mnist');
const K = Math.min(model.config.num_classes, data.numClasses);
const perClass = Math.round(Number(values.samples) / K);
const classes = Array.from({ length: K }, (_, k) => k);
const P = model.config.in_channels * model.config.input_size ** 2;

function run(s: Setting): { images: Float32Array; labels: Int32Array; seconds: number } {
  const settings: SampleSettings = { objective, steps: s.steps, cfg, seed, solver: { sampler: s.sampler, spacing: s.spacing, order: s.order } };
  const t0 = performance.now();
  const r = generateSamples(model, classes, perClass, settings);
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

const refSetting = parseSettings(values.reference ?? (objective === 'flow' ? 'heun:50' : 'dpm++3m:100'))[0];
const reference = run(refSetting);
const header = [
  `${values.model} (${objective}), ${K * perClass} samples, guidance ${cfg}, seed ${seed}, wasm ${values.threads} threads; RMS against ${label(refSetting)} ${refSetting.steps} steps`,
  '',
  '| sampler | steps | evaluations | 1-NN accuracy | mean NN distance | RMS to the converged sample | seconds |',
  '|---|---|---|---|---|---|---|',
];
process.stdout.write(header.join('\n') + '\n');
const rows: string[] = [];
let realNN = NaN;
const settings = positionals.flatMap(parseSettings);
for (const s of [...settings, refSetting]) {
  const isRef = s === refSetting;
  const r = isRef ? reference : run(s);
  const e = evaluateSamples(r.images, r.labels, data, seed);
  realNN = e.realNNDistance; // the same yardstick for every setting
  let rms = 0;
  for (let n = 0; n < r.labels.length; n++) {
    let d = 0;
    for (let i = n * P; i < (n + 1) * P; i++) d += (r.images[i] - reference.images[i]) ** 2;
    rms += Math.sqrt(d / P);
  }
  rms /= r.labels.length;
  const rmsText = isRef ? '(reference)' : s.sampler === 'ddpm' ? '—' : rms.toFixed(4);
  const row = `| ${label(s)} | ${s.steps} | ${modelEvaluations(s)} | ${(100 * e.accuracy).toFixed(0)}% | ${e.meanNNDistance.toFixed(2)} | ${rmsText} | ${r.seconds.toFixed(1)} |`;
  rows.push(row);
  process.stdout.write(row + '\n');
}
process.stdout.write(`real digits to their nearest other real digit: ${realNN.toFixed(2)}\n`);
if (values.out) writeFileAtomic(values.out, [...header, ...rows].join('\n') + '\n');
kernels.dispose();
