/**
 * `npm run bench`: runs every `*.bench.js` beside this file in turn (each exports `title`
 * and `run(log)` returning a markdown table) and writes bench/RESULTS.md: the machine and
 * Node version at the top, then one section per bench with the date and the load average
 * around its run. `node dist/bench/run.js gemm` runs only the files whose name contains
 * "gemm" and replaces only their sections, keeping the others of the existing file. A full
 * run replaces every bench's section and keeps the hand-written ones (earlier runs, training runs).
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
const cpus = os.cpus();
const out = path.join(packageRoot(), 'bench', 'RESULTS.md');

/** The sections of an existing RESULTS.md, by title (the text after "## "), in file order. */
function existingSections(): Map<string, string> {
  const sections = new Map<string, string>();
  if (!fs.existsSync(out)) return sections;
  const parts = fs.readFileSync(out, 'utf8').split(/^## /m).slice(1);
  for (const p of parts) sections.set(p.slice(0, p.indexOf('\n')).trim(), `## ${p.trimEnd()}\n`);
  return sections;
}

const sections = existingSections();
for (const f of files) {
  const mod = (await import(pathToFileURL(path.join(here, f)).href)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') {
    console.log(`## ${f}: skipped (it exports no \`run(log)\` returning a markdown table)`);
    continue;
  }
  const title = mod.title ?? f;
  console.log(`## ${title} (${f})`);
  const loadBefore = os.loadavg()[0];
  const table = await mod.run((line) => console.log(`  ${line}`));
  const when = `Measured ${new Date().toISOString()} by \`node dist/bench/run.js ${f.replace('.bench.js', '')}\`; load average (1 min) ${loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after (the bench itself counts about 1; more means other processes shared the ${cpus.length} cores).`;
  sections.set(title, `## ${title}\n\n${when}\n\n${table}\n`);
}

const header = [
  '# Benchmark results',
  '',
  `- Machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} logical cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.release()}`,
  `- Node ${process.version} (V8 ${process.versions.v8})`,
  '- Command: `npm run bench` (dist/bench/run.js) runs every section; `node dist/bench/run.js NAME` reruns one and keeps the others',
  '',
].join('\n');
fs.writeFileSync(out, `${header}\n${[...sections.values()].join('\n')}`);
console.log(`wrote ${out}`);
