/**
 * The wasm backend's own errors, each a DitMoeError with a one-line message: a module that does
 * not compile or instantiate, a worker that cannot start, a memory that cannot grow, a bad
 * thread count. (Bad operands are the shared checks of ref/kernelChecks.ts, tested on every
 * backend by spec/kernelChecks.test.ts.)
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import { DitMoeError } from '../../core/errors.js';
import { createWasmKernels, createWasmKernelsSync, kernelsWasmPath } from '../../wasm/node.js';
import { createWasmKernelsFrom, createSharedMemory } from '../../wasm/backend.js';
import { createThreadPool } from '../../wasm/threads.js';
import { Arena } from '../../wasm/arena.js';
import { webAssembly } from '../../wasm/webassembly.js';

describe('wasm errors', () => {
  it('bad input is a DitMoeError with a one-line message', async () => {
    expect(() => createWasmKernelsFrom(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 9]))).toThrow(DitMoeError);
    expect(() => createWasmKernelsFrom(new Uint8Array([1, 2, 3]))).toThrow(/does not compile/);
    // a worker that cannot instantiate (the one-thread build on a shared memory)
    const plain = new (webAssembly()!.Module)(fs.readFileSync(kernelsWasmPath()));
    await expect(createThreadPool(plain, createSharedMemory(), 1)).rejects.toThrow(/^wasm threads: cannot start 1 worker thread\(s\)/);
    // a memory that cannot grow (its maximum is 2 pages)
    const small = new Arena(new (webAssembly()!.Memory)({ initial: 1, maximum: 2 }), 0);
    small.alloc(1000);
    expect(() => small.alloc(100_000)).toThrow(/^wasm memory: cannot grow to [\d.]+ MiB/);
    await expect(createWasmKernels({ threads: 0 })).rejects.toThrow(/threads must be an integer/);
    let err: unknown = null;
    try {
      createWasmKernelsSync().linear(new Float32Array(1), new Float32Array(1), new Float32Array(0), null, 1, 1, 1);
    } catch (caught) {
      err = caught;
    }
    expect(err).toBeInstanceOf(DitMoeError);
    expect((err as Error).message).toBe('wasm.linear: w has 0 elements, needs 1');
  });
});
