#!/usr/bin/env node
/**
 * `dit-moe`: the command line. Each command lives in `cli/commands/<name>.ts` and exports
 * `register(program)`. Bad input (a DitMoeError) is one line on stderr and exit code 2.
 */
import { Command } from 'commander';
import { DitMoeError } from '../core/errors.js';
import { commands } from './commands/index.js';

const program = new Command();
program.name('dit-moe').description('DiT-MoE in TypeScript: reference, WebAssembly backend, conformance tools').showHelpAfterError();
program.exitOverride((err) => {
  // commander's own usage errors (unknown option, missing argument): exit 2 like bad input.
  process.exit(err.exitCode === 0 ? 0 : 2);
});
for (const register of commands) register(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof DitMoeError) {
    process.stderr.write(`dit-moe: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
});
