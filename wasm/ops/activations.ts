/**
 * SiLU on the wasm backend (kernels: wasm/assembly/activations.ts); not in the `Kernels`
 * interface, used by tests.
 */
import { dims, size } from '../../ref/kernelChecks.js';
import type { BackendHooks } from '../hooks.js';

export function silu(be: BackendHooks, out: Float32Array, x: Float32Array, n: number): void {
  dims('wasm.silu', n);
  size('wasm.silu', 'out', out, n), size('wasm.silu', 'x', x, n);
  be.scratch((s) => {
    const px = s.input(x, n);
    const po = s.output(out, n, 'none');
    be.exports.siluForward(po, px, n);
  });
}

export function siluBackward(be: BackendHooks, dx: Float32Array, dout: Float32Array, x: Float32Array, n: number): void {
  dims('wasm.siluBackward', n);
  size('wasm.siluBackward', 'dx', dx, n), size('wasm.siluBackward', 'dout', dout, n), size('wasm.siluBackward', 'x', x, n);
  be.scratch((s) => {
    const pdx = s.output(dx, n, 'keep');
    const pdo = s.input(dout, n);
    const px = s.input(x, n);
    be.exports.siluBackward(pdx, pdo, px, n);
  });
}
