/**
 * `dit-moe analyze` end to end on the tiny golden model, then its index.html in headless
 * Chromium (Debian's `chromium` package driven by playwright-core): every image loads
 * (naturalWidth > 0) and the page logs no console error and throws nothing.
 * Without /usr/bin/chromium the browser test is skipped (install: apt-get install -y chromium).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { runCli } from './runCli.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { GOLDEN_DIR } from './golden.js';
import { CHROMIUM, HAS_CHROMIUM, launchChromium, warnIfNoChromium, watchedPage } from './browser.js';

const MODEL = path.join(GOLDEN_DIR, 'tiny.model.safetensors');
warnIfNoChromium('analysisPage.test.ts');

let dir = '';
let out = '';

const run = runCli;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-analyze-'));
  out = path.join(dir, 'report');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('dit-moe analyze', () => {
  it('writes the pictures, stats.json and index.html', () => {
    const r = run('analyze', '--model', MODEL, '--samples', '3', '--class', '4,9', '--sampler', 'ddim', '--steps', '5', '--cfg', '2', '--out', out, '--backend', 'ref');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('index.html');
    const names = fs.readdirSync(out).sort();
    expect(names).toEqual(['expert_load.svg', 'expert_map.svg', 'heatmap_class.svg', 'heatmap_position.svg', 'heatmap_step.svg', 'index.html', 'samples.png', 'stats.json']);
    const stats = JSON.parse(fs.readFileSync(path.join(out, 'stats.json'), 'utf8'));
    expect(stats.steps).toBe(5);
    expect(stats.imageLabels).toEqual([4, 9, 4]);
    expect(stats.meta).toMatchObject({ sampler: 'ddim', steps: 5, cfg: 2 });
    // tokens of class 4: 2 images × 16 tokens × 5 steps, each with k = 2 slots
    for (const l of stats.layer) expect(l.classExpert[4].reduce((a: number, b: number) => a + b, 0)).toBe(2 * 16 * 5 * 2);
  });

  it('bad input is one line on stderr and exit 2', () => {
    for (const [args, frag] of [
      [['--samples', '0'], '--samples'],
      [['--sampler', 'euler'], "unknown sampler 'euler'"],
      [['--watch', '5', '--samples', '2'], '--watch'],
      [['--class', '99'], 'out of range'],
    ] as const) {
      const r = run('analyze', '--model', MODEL, '--out', path.join(dir, 'bad'), '--steps', '2', '--backend', 'ref', ...args);
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
      expect(r.err).toContain(frag);
    }
    expect(fs.existsSync(path.join(dir, 'bad'))).toBe(false);
  });

  it.skipIf(!HAS_CHROMIUM)(`index.html loads every image in headless Chromium without console errors (skipped when ${CHROMIUM} is absent)`, async () => {
    expect(fs.existsSync(path.join(out, 'index.html')), 'the CLI test above writes the page').toBe(true);
    const browser = await launchChromium();
    try {
      const { page, errors } = await watchedPage(browser);
      await page.goto(pathToFileURL(path.join(out, 'index.html')).href, { waitUntil: 'load' });
      const images = await page.$$eval('img', (els) => els.map((el) => ({ src: el.getAttribute('src'), complete: el.complete, w: el.naturalWidth, h: el.naturalHeight })));
      expect(images.map((i) => i.src).sort()).toEqual(['expert_load.svg', 'expert_map.svg', 'heatmap_class.svg', 'heatmap_position.svg', 'heatmap_step.svg', 'samples.png']);
      for (const img of images) {
        expect(img.complete, img.src!).toBe(true);
        expect(img.w, img.src!).toBeGreaterThan(0);
        expect(img.h, img.src!).toBeGreaterThan(0);
      }
      const captions = await page.$$eval('figcaption', (els) => els.map((el) => el.textContent ?? ''));
      expect(captions).toHaveLength(images.length);
      for (const c of captions) expect(c.length).toBeGreaterThan(100);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
