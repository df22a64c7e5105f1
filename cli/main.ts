#!/usr/bin/env node
/**
 * `dit-moe`: the command line. Each command lives in `cli/commands/<name>.ts` and exports
 * `register(program)`. Bad input (a DitMoeError) is one line on stderr and exit code 2; so is a
 * usage error (unknown option, missing argument), with a pointer to --help instead of the help.
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { DitMoeError } from '../core/errors.js';
import { commands } from './commands/index.js';

/** The package's version (package.json sits two folders above dist/cli/main.js). */
function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const program = new Command();
program.name('dit-moe').description('DiT-MoE in TypeScript: reference, WebAssembly backend, conformance tools').version(packageVersion(), '-V, --version', 'print the version');
program.exitOverride((err) => {
  // commander's own usage errors (unknown option, missing argument): exit 2 like bad input.
  process.exit(err.exitCode === 0 ? 0 : 2);
});
for (const register of commands) register(program);
for (const cmd of [program, ...program.commands]) {
  const help = cmd === program ? 'dit-moe --help' : `dit-moe ${cmd.name()} --help`;
  cmd.configureOutput({ outputError: (str, write) => write(`dit-moe: ${str.trim().replace(/^error: /, '')} (see ${help})\n`) });
}

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof DitMoeError) {
    process.stderr.write(`dit-moe: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
});
