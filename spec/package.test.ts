/**
 * The package as a user gets it: `npm pack`, the tarball unpacked into a temporary project's
 * node_modules (its runtime dependencies linked from ours: no network), then
 * - Node imports both entries, `dit-moe` and `dit-moe/node`, by name, type-checks a file that
 *   uses them (the .d.ts files are in the package), and runs a wasm forward of the shipped model;
 * - Vite bundles a page that imports `dit-moe` (the .wasm assets found through
 *   `new URL(..., import.meta.url)`, no configuration); headless Chromium opens it and its
 *   forward must equal Node's bit for bit (same kernels, same model, same input).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HAS_CHROMIUM, launchChromium, warnIfNoChromium, watchedPage } from './browser.js';
import { serveStatic } from '../web/serve.js';

const ROOT = path.resolve(import.meta.dirname, '..');
warnIfNoChromium('package.test.ts');

let dir = '';
let proj = '';

/** Links `name` and its dependencies (recursively) from our node_modules into the project's. */
function linkDependency(name: string, seen: Set<string>): void {
  if (seen.has(name)) return;
  seen.add(name);
  const src = path.join(ROOT, 'node_modules', name);
  const dst = path.join(proj, 'node_modules', name);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.symlinkSync(src, dst, 'dir');
  const pj = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const d of Object.keys(pj.dependencies ?? {})) linkDependency(d, seen);
}

/** The same forward in Node and in the page: the shipped model on fixed noise, two labels, two times. */
const FORWARD_JS = `
import { loadModelFromBytes, diffusion } from 'dit-moe';
export function forwardHex(bytes, kernels) {
  const { model } = loadModelFromBytes(bytes, 'mnist-s.safetensors', kernels);
  const c = model.config;
  const shape = [2, c.in_channels, c.input_size, c.input_size];
  const x = diffusion.makeRng(1).fillNormal(new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]));
  const out = Float32Array.from(model.forward(x, shape, [0.5, 0.9], [3, 7]));
  return Array.from(new Uint8Array(out.buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}
`;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-pack-'));
  execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const tgz = fs.readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
  proj = path.join(dir, 'proj');
  fs.mkdirSync(path.join(proj, 'node_modules'), { recursive: true });
  execFileSync('tar', ['-xzf', path.join(dir, tgz), '-C', path.join(proj, 'node_modules')]);
  fs.renameSync(path.join(proj, 'node_modules', 'package'), path.join(proj, 'node_modules', 'dit-moe'));
  const pkg = JSON.parse(fs.readFileSync(path.join(proj, 'node_modules', 'dit-moe', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const seen = new Set<string>();
  for (const d of Object.keys(pkg.dependencies)) linkDependency(d, seen);
  fs.writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', type: 'module', private: true }));
  fs.writeFileSync(path.join(proj, 'forward.js'), FORWARD_JS);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

let nodeHex: Record<number, string> = {};

describe('the packed package', () => {
  it('ships both typed entries and the kernels', () => {
    const pkgDir = path.join(proj, 'node_modules', 'dit-moe');
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts', 'dist/wasm/browser.js', 'wasm/build/kernels.wasm', 'wasm/build/kernels-mt.wasm', 'models/mnist-s.safetensors']) expect(fs.existsSync(path.join(pkgDir, f)), f).toBe(true);
    // a user's TypeScript against the entries: wrong use is a type error, right use is not
    fs.writeFileSync(path.join(proj, 'use.ts'), [
      "import { loadWasmKernels, loadModelFromBytes, RoutingRecorder, SAMPLERS, SAMPLER_LABELS, type WasmKernels } from 'dit-moe';",
      "import { createWasmKernels, loadModelFile, Trainer } from 'dit-moe/node';",
      'export const a: Promise<WasmKernels> = loadWasmKernels({ threads: 1 });',
      'export const b: Promise<WasmKernels> = createWasmKernels({ threads: 2 });',
      'export const c = [loadModelFromBytes, RoutingRecorder, SAMPLER_LABELS[SAMPLERS[0]], loadModelFile, Trainer];',
      '// @ts-expect-error threads is a number',
      "export const d = createWasmKernels({ threads: 'two' });",
    ].join('\n'));
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), 'use.ts'], { cwd: proj, stdio: 'pipe' });
  });

  it('imports dit-moe and dit-moe/node in Node and runs a wasm forward of the shipped model', () => {
    fs.writeFileSync(path.join(proj, 'node-forward.js'), [
      "import * as lib from 'dit-moe';",
      "import { createWasmKernels, readBytes } from 'dit-moe/node';",
      "import { forwardHex } from './forward.js';",
      "const names = ['loadWasmKernels', 'createWasmKernelsAsync', 'createWasmKernelsFromUrl', 'readPtCheckpoint', 'RoutingRecorder', 'sampleImages', 'loadModelFromBytes', 'runCase'];",
      "const missing = names.filter((n) => typeof lib[n] !== 'function');",
      "if (missing.length) throw new Error('missing from dit-moe: ' + missing.join(', '));",
      "const bytes = readBytes('node_modules/dit-moe/models/mnist-s.safetensors');",
      'const out = {};',
      'for (const threads of [1, 2]) {',
      '  const kernels = await createWasmKernels({ threads });',
      '  out[threads] = forwardHex(bytes, kernels);',
      '  kernels.dispose();',
      '}',
      'process.stdout.write(JSON.stringify(out));',
    ].join('\n'));
    nodeHex = JSON.parse(execFileSync(process.execPath, ['node-forward.js'], { cwd: proj, encoding: 'utf8' })) as Record<number, string>;
    expect(nodeHex[2].length).toBe(nodeHex[1].length);
    expect(nodeHex[1].length).toBe(2 * 1 * 28 * 28 * 4 * 2); // [2, 1, 28, 28] floats, two hex digits a byte
    // a real prediction, not zeros: the output varies
    expect(new Set(nodeHex[1].match(/.{8}/g)).size).toBeGreaterThan(1000);
  });

  it.skipIf(!HAS_CHROMIUM)('bundled by Vite, runs in Chromium and gives the same forward as Node, bit for bit', async () => {
    expect(nodeHex[1], 'the Node test above computes the reference').toBeDefined();
    fs.mkdirSync(path.join(proj, 'public'), { recursive: true });
    fs.copyFileSync(path.join(proj, 'node_modules', 'dit-moe', 'models', 'mnist-s.safetensors'), path.join(proj, 'public', 'mnist-s.safetensors'));
    fs.writeFileSync(path.join(proj, 'index.html'), '<!doctype html><html><head><link rel="icon" href="data:,"></head><body><script type="module" src="./main.js"></script></body></html>');
    fs.writeFileSync(path.join(proj, 'main.js'), [
      "import { loadWasmKernels, fetchBytes } from 'dit-moe';",
      "import { forwardHex } from './forward.js';",
      'try {',
      "  const kernels = await loadWasmKernels({ threads: Number(new URLSearchParams(location.search).get('threads')) });",
      "  window.result = { threads: kernels.threads, hex: forwardHex(await fetchBytes('./mnist-s.safetensors'), kernels) };",
      '} catch (e) { window.result = { error: String(e && e.message || e) }; }',
    ].join('\n'));
    const { build } = await import('vite');
    await build({ root: proj, logLevel: 'silent', configFile: false, build: { outDir: 'out', target: 'es2022' } });
    const assets = fs.readdirSync(path.join(proj, 'out', 'assets'));
    expect(assets.some((f) => /^kernels-.*\.wasm$/.test(f)), assets.join(', ')).toBe(true);
    // not isolated: the one-thread build whatever is asked; isolated: the threads build on 2 threads
    // (Web Workers, the page's main thread spinning while it waits for them)
    const plain = await serveStatic(path.join(proj, 'out'));
    const isolated = await serveStatic(path.join(proj, 'out'), { isolate: true });
    const browser = await launchChromium();
    try {
      for (const [server, threads] of [[plain, 1], [isolated, 2]] as const) {
        const { page, errors } = await watchedPage(browser);
        await page.goto(`${server.url}?threads=2`);
        await page.waitForFunction(() => (globalThis as unknown as { result?: unknown }).result !== undefined, null, { timeout: 60_000 });
        const r = (await page.evaluate(() => (globalThis as unknown as { result: { threads?: number; hex?: string; error?: string } }).result));
        expect(r.error).toBeUndefined();
        expect(r.threads).toBe(threads);
        expect(r.hex === nodeHex[threads], `the page forward on ${threads} thread(s) differs from Node's`).toBe(true);
        expect(errors).toEqual([]);
        await page.close();
      }
    } finally {
      await browser.close();
      await plain.close();
      await isolated.close();
    }
  });
});
