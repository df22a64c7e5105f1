/**
 * Sampling in the explorer page (headless Chromium, web/ built by Vite and served with the
 * cross-origin isolation headers) against Node (the CLI's `sampleImages` on the wasm backend of
 * `dit-moe sample`) on the same thread count, side by side in one run: 10 digits of the shipped
 * model, rectified-flow Euler, guidance 4. Runs alternate page / Node, three of each per thread
 * count; the table gives the median ms per step (fastest in brackets). The page's time is the
 * worker's whole loop, including what the page adds per step: the routing trace and recorder,
 * and posting x̂0 and routing to the page. Needs /usr/bin/chromium.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot, createWasmKernels } from '../wasm/node.js';
import { loadModelFile } from '../cli/loadModel.js';
import { sampleImages } from '../ref/diffusion/sampling.js';
import { serveStatic } from '../web/serve.js';

export const title = 'Sampling in the page (Chromium) vs Node, same thread count';

const STEPS = 20;
const COUNT = 10;
const RUNS = 5;
const CHROMIUM = '/usr/bin/chromium';

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

export async function run(log: (line: string) => void): Promise<string> {
  if (!fs.existsSync(CHROMIUM)) return `Skipped: ${CHROMIUM} is absent.`;
  const root = packageRoot();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-bench-web-'));
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'web', 'vite.config.ts'), logLevel: 'silent', build: { outDir: dir, emptyOutDir: true } });
  const server = await serveStatic(dir, { isolate: true });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const labels = Int32Array.from({ length: COUNT }, (_, i) => i % 10);
  const rows: string[] = [];
  try {
    for (const threads of [1, 2]) {
      const page = await browser.newPage();
      await page.goto(`${server.url}?threads=${threads}`);
      await page.waitForFunction(() => (globalThis as any).explorer.state.loaded, null, { timeout: 60_000 });
      const granted = await page.evaluate(() => (globalThis as any).explorer.state.threads as number);
      await page.fill('#steps', String(STEPS));
      await page.fill('#count', String(COUNT));
      const kernels = await createWasmKernels({ threads });
      const model = await loadModelFile(path.join(root, 'models', 'mnist-s.safetensors'), kernels);
      const pageMs: number[] = [];
      const nodeMs: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        await page.click('#generate');
        await page.waitForFunction(() => { const s = (globalThis as any).explorer.state; return !s.running && s.samples !== null; }, null, { timeout: 300_000 });
        pageMs.push(await page.evaluate(() => (globalThis as any).explorer.state.msPerStep as number));
        const t0 = performance.now();
        sampleImages(model, { sampler: 'flow', steps: STEPS, labels, cfg: 4, guidedChannels: 'all', seed: 0 });
        nodeMs.push((performance.now() - t0) / STEPS);
        log(`${threads} thread(s), run ${r + 1}: page ${pageMs[r].toFixed(1)} ms/step, Node ${nodeMs[r].toFixed(1)} ms/step`);
      }
      kernels.dispose();
      await page.close();
      const p = median(pageMs);
      const n = median(nodeMs);
      rows.push(`| ${threads} (page got ${granted}) | ${p.toFixed(1)} (${Math.min(...pageMs).toFixed(1)}) | ${n.toFixed(1)} (${Math.min(...nodeMs).toFixed(1)}) | ${(p / n).toFixed(2)}× |`);
    }
  } finally {
    await browser.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return [
    `${COUNT} digits of models/mnist-s.safetensors, rectified-flow Euler, ${STEPS} steps, guidance 4 (two model calls per step), seed 0; ms per step, median of ${RUNS} (fastest).`,
    '',
    '| threads | page (Chromium, web worker) | Node (the CLI\'s sampleImages) | page / Node |',
    '|---|---:|---:|---:|',
    ...rows,
  ].join('\n');
}
