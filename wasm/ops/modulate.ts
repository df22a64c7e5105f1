/**
 * adaLN modulation and the gated residual on the wasm backend (formulas: ref/modulate.ts;
 * kernels: wasm/assembly/modulate.ts): sequences shared by the threads.
 */
import type { BackendHooks } from '../hooks.js';
import { split } from '../parallel.js';

// out[B,T,D] = x·(1 + scale) + shift, sequences shared by the threads
export function modulate(be: BackendHooks, out: Float32Array, x: Float32Array, shift: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
  if (B * T * D === 0) return;
  be.scratch((s) => {
    const [px, psh, psc] = [s.input(x, B * T * D), s.input(shift, B * D), s.input(scale, B * D)];
    const po = s.output(out, B * T * D, 'none');
    split(be, 'modulateForward', B, 1, 3 * B * T * D, (lo, hi) => [po + lo * T * D * 4, px + lo * T * D * 4, psh + lo * D * 4, psc + lo * D * 4, hi - lo, T, D]);
  });
}

// dx += dy·(1 + scale), dshift[b] += Σ_t dy, dscale[b] += Σ_t dy·x
export function modulateBackward(be: BackendHooks, dx: Float32Array, dshift: Float32Array, dscale: Float32Array, dout: Float32Array, x: Float32Array, scale: Float32Array, B: number, T: number, D: number): void {
  if (B * T * D === 0) return;
  be.scratch((s) => {
    const [pdo, px, psc] = [s.input(dout, B * T * D), s.input(x, B * T * D), s.input(scale, B * D)];
    const [pdx, pdsh, pdsc] = [s.output(dx, B * T * D, 'keep'), s.output(dshift, B * D, 'keep'), s.output(dscale, B * D, 'keep')];
    split(be, 'modulateBackward', B, 1, 6 * B * T * D, (lo, hi) => [pdx + lo * T * D * 4, pdsh + lo * D * 4, pdsc + lo * D * 4, pdo + lo * T * D * 4, px + lo * T * D * 4, psc + lo * D * 4, hi - lo, T, D]);
  });
}

// x += gate · f
export function gatedResidual(be: BackendHooks, x: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
  if (B * T * D === 0) return;
  be.scratch((s) => {
    const [pf, pg] = [s.input(f, B * T * D), s.input(gate, B * D)];
    const px = s.output(x, B * T * D, 'keep');
    split(be, 'gatedResidualForward', B, 1, 2 * B * T * D, (lo, hi) => [px + lo * T * D * 4, pf + lo * T * D * 4, pg + lo * D * 4, hi - lo, T, D]);
  });
}

// df += dy·gate, dgate[b] += Σ_t dy·f
export function gatedResidualBackward(be: BackendHooks, df: Float32Array, dgate: Float32Array, dout: Float32Array, f: Float32Array, gate: Float32Array, B: number, T: number, D: number): void {
  if (B * T * D === 0) return;
  be.scratch((s) => {
    const [pdo, pf, pg] = [s.input(dout, B * T * D), s.input(f, B * T * D), s.input(gate, B * D)];
    const [pdf, pdg] = [s.output(df, B * T * D, 'keep'), s.output(dgate, B * D, 'keep')];
    split(be, 'gatedResidualBackward', B, 1, 4 * B * T * D, (lo, hi) => [pdf + lo * T * D * 4, pdg + lo * D * 4, pdo + lo * T * D * 4, pf + lo * T * D * 4, pg + lo * D * 4, hi - lo, T, D]);
  });
}
