/**
 * The released checkpoints' sizes on this machine: for each, a random-weight checkpoint in the
 * released `.pt` layout (bench/writeCheckpoint.ts, in /tmp, deleted after), then in a process of
 * its own (bench/scaleOne.ts): time to open, one forward at 256×256 (32×32×4 latent), batch 2,
 * wasm on 2 threads (first and second call), the time of each spent waiting for the disk, peak
 * resident memory, and the GEMM rate measured in the same process (the arithmetic's floor).
 * SCALE_MODELS=S/2-8,B/2-8 picks models; SCALE_KEEP=1 keeps the files; SCALE_FORWARDS=1 times one forward.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { presetConfig } from '../ref/config.js';
import { writeCheckpoint } from './writeCheckpoint.js';

export const title = 'Released-size checkpoints on one machine (random weights, .pt, wasm 2 threads, batch 2 at 32×32×4)';

interface Model {
  name: string;
  preset: string;
  experts: number;
  dtype: 'F32' | 'F16';
  /** --memory-budget in GB (undefined: the default, what the machine can spare). */
  budget?: number;
}

const MODELS: Model[] = [
  { name: 'S/2-8E2A', preset: 'S/2', experts: 8, dtype: 'F32' },
  { name: 'S/2-16E2A', preset: 'S/2', experts: 16, dtype: 'F32' },
  { name: 'B/2-8E2A', preset: 'B/2', experts: 8, dtype: 'F32' },
  { name: 'XL/2-8E2A', preset: 'XL/2', experts: 8, dtype: 'F16', budget: 6 },
  { name: 'G/2-16E2A', preset: 'G/2', experts: 16, dtype: 'F16', budget: 10 },
];

interface Result {
  openMs: number;
  forwards: { ms: number; waitMs: number }[];
  maxRssKB: number;
  gemmGflops: number[];
  flops: number;
  resident: boolean;
  notes: string[];
}

export async function run(log: (line: string) => void): Promise<string> {
  const pick = process.env.SCALE_MODELS?.split(',');
  const models = MODELS.filter((m) => !pick || pick.some((p) => m.name.startsWith(p)));
  const here = path.dirname(fileURLToPath(import.meta.url));
  const rows: string[] = [];
  for (const m of models) {
    const file = path.join(os.tmpdir(), `dit-moe-${m.name.replace('/', '_')}-${m.dtype}.pt`);
    const w0 = Date.now();
    if (!fs.existsSync(file)) writeCheckpoint({ config: presetConfig(m.preset, { num_experts: m.experts }), dtype: m.dtype, out: file });
    const size = fs.statSync(file).size;
    log(`${m.name}: ${(size / 1e9).toFixed(2)} GB written in ${((Date.now() - w0) / 1000).toFixed(0)} s; measuring`);
    const load0 = os.loadavg()[0];
    const r = spawnSync(process.execPath, [path.join(here, 'scaleOne.js'), file, m.preset, String(m.experts), ...(m.budget ? [String(m.budget)] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (!process.env.SCALE_KEEP) fs.rmSync(file, { force: true });
    if (r.status !== 0) {
      const why = r.stderr.split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}`;
      log(`${m.name}: failed: ${r.stderr}`);
      rows.push(`| ${m.name} | ${m.dtype} | ${(size / 1e9).toFixed(2)} | failed: ${why} |||||||`);
      continue;
    }
    const x = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
    const [f1, f2 = { ms: NaN, waitMs: NaN }] = x.forwards;
    const rate = Math.max(...x.gemmGflops);
    const arith = x.flops / (rate * 1e9);
    log(`${m.name}: ${JSON.stringify(x)}`);
    rows.push(
      `| ${m.name} | ${m.dtype} | ${(size / 1e9).toFixed(2)} | ${m.budget ?? 'default'} → ${x.resident ? 'resident' : 'streamed'} | ${(x.openMs / 1000).toFixed(1)} | ${(f1.ms / 1000).toFixed(1)} (${((100 * f1.waitMs) / f1.ms).toFixed(0)}%) | ${Number.isNaN(f2.ms) ? 'not run' : `${(f2.ms / 1000).toFixed(1)} (${((100 * f2.waitMs) / f2.ms).toFixed(0)}%)`} | ${(x.maxRssKB / 2 ** 20).toFixed(2)} | ${(x.flops / 1e12).toFixed(2)} TFLOP at ${x.gemmGflops.map((g) => g.toFixed(0)).join('/')} GFLOP/s = ${arith.toFixed(1)} s; forward ${((x.forwards[x.forwards.length - 1].ms) / 1000 / arith).toFixed(2)}× | ${load0.toFixed(1)} |`,
    );
  }
  // rows of models not measured in this run are kept from the existing section (the big ones are run one at a time)
  const results = path.join(here, '..', '..', 'bench', 'RESULTS.md');
  const old = fs.existsSync(results) ? fs.readFileSync(results, 'utf8').split(`## ${title}`)[1]?.split('\n## ')[0] ?? '' : '';
  const kept = old.split('\n').filter((l) => /^\| [SBXLG]+\/2-/.test(l) && !rows.some((r) => r.startsWith(l.slice(0, l.indexOf(' |', 2) + 2))));
  const order = (r: string) => MODELS.findIndex((m) => r.startsWith(`| ${m.name} |`));
  rows.push(...kept);
  rows.sort((a, b) => order(a) - order(b));
  return [
    '| model | dtype | file GB | budget GB → weights | open s | forward 1 s (waiting for disk) | forward 2 s (waiting for disk) | peak RSS GiB | arithmetic alone (GEMM rate before/after, same process) | load avg |',
    '|---|---|---:|---|---:|---:|---:|---:|---|---:|',
    ...rows,
    '',
    'Files: random weights in the released `.pt` layout (torch.save zip, zip64 records, one storage per tensor), written to /tmp by bench/writeCheckpoint.ts and deleted after. Open = the zip directory and pickle read and checked, the resident tensors read (with their CRC-32). The forward is `model.forward` on batch 2 (one guidance pair) at 32×32×4. Waiting for disk = time the forward spent blocked on a block not yet read ahead. The arithmetic alone = 2·(linear + attention MACs) of the batch at the best GEMM rate measured in the same process (an expert up-projection, 128 rows). **The machine is shared: 2 cores, and other developers were running tests and builds at the same time (load average in the last column, measured before each model); the forward times and GEMM rates are several times slower than on a quiet machine.**',
  ].join('\n');
}
