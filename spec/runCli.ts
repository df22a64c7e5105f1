/**
 * Runs the built command line (dist/cli/main.js, compiled by the global setup) in a child
 * process. A child that has not ended after 5 minutes is killed and its test fails with the
 * command named, so a hang costs one test, never the whole suite.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { GOLDEN_DIR } from './golden.js';

export const CLI = path.join(GOLDEN_DIR, '..', 'dist', 'cli', 'main.js');
const TIMEOUT_MS = 300_000;

export function runCli(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: TIMEOUT_MS });
  if (r.error) throw new Error(`dit-moe ${args.join(' ')}: ${r.error.message}`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}
