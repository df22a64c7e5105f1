/**
 * The final layer (official `FinalLayer`):
 *   shift, scale = Linear(silu(c)) chunked in 2                   c [B, D] → 2 × [B, D]
 *   y = Linear(modulate(LN(x), shift, scale))                     x [B, T, D] → [B, T, p·p·C_out]
 */
import type { Kernels } from './kernels.js';
import { chunkModulation, unchunkModulation } from './block.js';

export interface FinalWeights {
  adaW: Float32Array; // [2D, D]
  adaB: Float32Array; // [2D]
  linW: Float32Array; // [P, D], P = p·p·C_out
  linB: Float32Array; // [P]
}

export interface FinalCache {
  mods: Float32Array[]; // shift, scale [B, D]
  ln: { mean: Float32Array; rstd: Float32Array; out: Float32Array };
  modulated: Float32Array; // [B, T, D]
}

export function finalLayerForward(kern: Kernels, out: Float32Array, x: Float32Array, siluC: Float32Array, w: FinalWeights, B: number, T: number, D: number, P: number): FinalCache {
  const M = B * T;
  const mod = new Float32Array(B * 2 * D);
  kern.linear(mod, siluC, w.adaW, w.adaB, B, D, 2 * D);
  const mods = chunkModulation(mod, B, D, 2);
  const ln = { mean: kern.tensor(M), rstd: kern.tensor(M), out: kern.tensor(M * D) };
  kern.layerNorm(ln.out, ln.mean, ln.rstd, x, null, null, M, D, 1e-6);
  const modulated = kern.tensor(M * D);
  kern.modulate(modulated, ln.out, mods[0], mods[1], B, T, D);
  kern.linear(out, modulated, w.linW, w.linB, M, D, P);
  return { mods, ln, modulated };
}

/** Backward (accumulates into dx [B, T, D], dSiluC [B, D] and the weight gradients). */
export function finalLayerBackward(kern: Kernels, dx: Float32Array, dSiluC: Float32Array, g: FinalWeights, dout: Float32Array, x: Float32Array, siluC: Float32Array, w: FinalWeights, cache: FinalCache, B: number, T: number, D: number, P: number): void {
  const M = B * T;
  const dmod = kern.tensor(M * D);
  kern.linearBackward(dmod, g.linW, g.linB, dout, cache.modulated, w.linW, M, D, P);
  const dshift = new Float32Array(B * D);
  const dscale = new Float32Array(B * D);
  const dln = kern.tensor(M * D);
  kern.modulateBackward(dln, dshift, dscale, dmod, cache.ln.out, cache.mods[1], B, T, D);
  kern.layerNormBackward(dx, null, null, dln, x, null, cache.ln.mean, cache.ln.rstd, M, D);
  kern.linearBackward(dSiluC, g.adaW, g.adaB, unchunkModulation([dshift, dscale], B, D), siluC, w.adaW, B, D, 2 * D);
}
