// The explorer's build: `npm run web` (vite build → web/dist, then web/serve.ts serves it with
// the cross-origin isolation headers). base './': the files work from any folder of any host.
import { defineConfig, type Plugin } from 'vite';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The source files the page's text links to, copied as plain text to source/<path>.txt. */
const LINKED_SOURCES = ['ref/router.ts', 'ref/moe.ts', 'ref/moeExperts.ts', 'ref/swiglu.ts', 'ref/balanceLoss.ts', 'analysis/ablation.ts', 'web/src/worker.ts'];

function linkedSources(): Plugin {
  const root = path.resolve(import.meta.dirname, '..');
  return {
    name: 'dit-moe-linked-sources',
    generateBundle() {
      for (const f of LINKED_SOURCES) this.emitFile({ type: 'asset', fileName: `source/${f}.txt`, source: fs.readFileSync(path.join(root, f), 'utf8') });
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', assetsInlineLimit: 0, chunkSizeWarningLimit: 2000 },
  plugins: [linkedSources()],
  worker: { format: 'es' },
  server: { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } },
  preview: { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } },
});
