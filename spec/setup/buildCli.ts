/**
 * vitest global setup: the CLI tests run the compiled `dist/cli/main.js`, so compile the
 * TypeScript first (the wasm build is `npm run build:wasm`, run by `npm ci`'s prepare).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
}
