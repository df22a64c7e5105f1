/**
 * `npm run bench`: runs every `*.bench.js` beside this file in turn (each exports `title`
 * and `run(log)` returning a markdown table) and writes bench/RESULTS.md with the machine,
 * the Node version and the date. `node dist/bench/run.js gemm` runs only the files whose
 * name contains "gemm".
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { packageRoot } from '../wasm/node.js';

interface BenchModule {
  title: string;
  run(log: (line: string) => void): Promise<string>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv[2];
const files = fs
  .readdirSync(here)
  .filter((f) => f.endsWith('.bench.js') && (!only || f.includes(only)))
  .sort();

const loadBefore = os.loadavg()[0];
const sections: string[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(path.join(here, f)).href)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') {
    console.log(`## ${f}: skipped (it exports no \`run(log)\` returning a markdown table)`);
    continue;
  }
  console.log(`## ${mod.title ?? f} (${f})`);
  const table = await mod.run((line) => console.log(`  ${line}`));
  sections.push(`## ${mod.title ?? f}\n\n${table}\n`);
}

const cpus = os.cpus();
const header = [
  '# Benchmark results',
  '',
  `- Machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} logical cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.release()}`,
  `- Node ${process.version} (V8 ${process.versions.v8})`,
  `- Date: ${new Date().toISOString()}`,
  `- Command: \`npm run bench\` (dist/bench/run.js${only ? ` ${only}` : ''})`,
  `- Load average (1 min) when the run started: ${loadBefore.toFixed(2)}, when it ended: ${os.loadavg()[0].toFixed(2)} (the bench itself counts about 1; more means other processes shared the ${cpus.length} cores)`,
  '',
].join('\n');
const out = path.join(packageRoot(), 'bench', 'RESULTS.md');
fs.writeFileSync(out, `${header}\n${sections.join('\n')}`);
console.log(`wrote ${out}`);
