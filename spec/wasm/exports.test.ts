/**
 * The one declared list of the module's exports (wasm/exports.ts) against the built modules:
 * every declared export exists with the declared number of parameters, in both builds (one
 * thread, and the shared-memory build the workers run). The module exports a few helpers more
 * (exp4 on v128, packRowPair, …) that the host never calls; they need no declaration.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import { KERNEL_EXPORTS, WORKER_FUNCTIONS } from '../../wasm/exports.js';
import { kernelsWasmPath } from '../../wasm/node.js';

function functionsOf(threads: boolean): Map<string, number> {
  const module = new WebAssembly.Module(fs.readFileSync(kernelsWasmPath(threads)));
  const shared = threads;
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const arity = new Map<string, number>();
  for (const [name, f] of Object.entries(instance.exports)) if (typeof f === 'function') arity.set(name, f.length);
  return arity;
}

describe.each([false, true])('the declared exports (shared-memory build: %s)', (threads) => {
  it('are functions of the module, each with its declared parameters', () => {
    const actual = functionsOf(threads);
    for (const [name, { params }] of Object.entries(KERNEL_EXPORTS)) expect([name, actual.get(name)]).toEqual([name, params.length]);
  });
});

describe('WORKER_FUNCTIONS', () => {
  it('are the exports declared for workers, each once', () => {
    expect(new Set(WORKER_FUNCTIONS).size).toBe(WORKER_FUNCTIONS.length);
    expect(WORKER_FUNCTIONS.length).toBeGreaterThan(0);
    for (const name of WORKER_FUNCTIONS) expect(KERNEL_EXPORTS[name].worker).toBe(true);
  });
});
