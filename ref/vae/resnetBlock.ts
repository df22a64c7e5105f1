/**
 * diffusers' ResnetBlock2D as the VAE uses it (no time embedding, output_scale_factor 1):
 *   h   = conv1(silu(GroupNorm₁(x)))          3×3, padding 1, C_in → C_out
 *   h   = conv2(silu(GroupNorm₂(h)))          3×3, padding 1 (dropout: eval, none)
 *   out = shortcut(x) + h                     shortcut: 1×1 conv_shortcut when C_in ≠ C_out, else x
 *   x [N, C_in, H, W] → out [N, C_out, H, W]; GroupNorm eps 1e-6, G groups.
 */
import type { Kernels } from '../kernels.js';
import { convShape } from './conv2d.js';
import { addInto } from './elementwise.js';
import { VAE_EPS } from './config.js';
import type { NamedWeights } from './weights.js';

/** Writes out [N, C_out, H, W]; C_out is read from conv1's weight. */
export function resnetBlockForward(kern: Kernels, out: Float32Array, x: Float32Array, w: NamedWeights, pre: string, N: number, Cin: number, H: number, W: number, G: number): number {
  const S = H * W;
  const Cout = w.get(`${pre}.norm2.weight`).length;
  const m = kern.mark();
  const h = kern.tensor(N * Cin * S);
  kern.groupNorm(h, x, w.get(`${pre}.norm1.weight`), w.get(`${pre}.norm1.bias`), N, Cin, S, G, VAE_EPS, true);
  const h2 = kern.tensor(N * Cout * S);
  kern.conv2d(h2, h, w.get(`${pre}.conv1.weight`), w.get(`${pre}.conv1.bias`), convShape(N, Cin, H, W, Cout, 3));
  const h3 = kern.tensor(N * Cout * S);
  kern.groupNorm(h3, h2, w.get(`${pre}.norm2.weight`), w.get(`${pre}.norm2.bias`), N, Cout, S, G, VAE_EPS, true);
  kern.conv2d(out, h3, w.get(`${pre}.conv2.weight`), w.get(`${pre}.conv2.bias`), convShape(N, Cout, H, W, Cout, 3));
  if (w.has(`${pre}.conv_shortcut.weight`)) {
    const sc = kern.tensor(N * Cout * S);
    kern.conv2d(sc, x, w.get(`${pre}.conv_shortcut.weight`), w.get(`${pre}.conv_shortcut.bias`), convShape(N, Cin, H, W, Cout, 1));
    addInto(out, sc, N * Cout * S);
  } else addInto(out, x, N * Cout * S);
  kern.release(m);
  return Cout;
}
