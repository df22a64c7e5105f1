/**
 * vitest global setup: the CLI tests run the compiled `dist/cli/main.js`, so compile the
 * TypeScript first (the wasm build is `npm run build:wasm`, run by `npm ci`'s prepare); and
 * type-check the tests themselves (tsconfig.spec.json: vitest strips types without checking).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const project of ['tsconfig.json', 'tsconfig.spec.json']) execFileSync(process.execPath, [tsc, '-p', path.join(root, project)], { cwd: root, stdio: 'inherit' });
}
