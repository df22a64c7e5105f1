/**
 * Sizes bounded before allocating: what a command is asked to hold (a model's weights, a batch's
 * activations, a picture's pixels) is estimated from the configuration and the options, and a
 * request beyond the memory this process may use is one line naming the option, not a V8 heap
 * abort after a minute or a RangeError.
 *
 * The wasm backend holds the weights and activations in one wasm32 memory. Today only its first
 * 2 GiB are usable: wasm/arena.ts turns byte addresses into f32 indices with `p >> 2`, a signed
 * shift, so an address past 2³¹ becomes a negative index ("offset is out of bounds" for B/2).
 * Larger models are refused with a clear error; the big-models work (issue 12) raises
 * WASM_MEMORY_BYTES where it makes them fit.
 */
import * as os from 'node:os';
import { DitMoeError } from '../core/errors.js';
import { dims, type DiTConfig } from '../ref/config.js';
import { accounting } from '../ref/accounting.js';
import type { Kernels } from '../ref/kernels.js';

/** The memory a command may plan to use: half the machine's. */
export const MEMORY_BYTES = os.totalmem() / 2;
/** What the wasm backend can hold today (see the top of this file). */
export const WASM_MEMORY_BYTES = 2 ** 31;
/** The largest picture written: 100 megapixels (400 MB of RGBA while encoding). */
export const MAX_PIXELS = 100e6;

const GB = (b: number) => `${(b / 1e9).toFixed(b < 1e10 ? 2 : 0)} GB`;

/** Throws unless `bytes` fit in `budget`; the message names the option and the sizes. */
export function checkBytes(bytes: number, what: string, where: string, budget = MEMORY_BYTES, remedy = ''): void {
  if (!(bytes <= budget)) throw new DitMoeError(`${what} needs about ${GB(bytes)}, more than the ${GB(budget)} this command may use${remedy ? `; ${remedy}` : ''}`, where);
}

/** Bytes of float32 weights of a configuration. */
export function weightBytes(c: DiTConfig): number {
  return 4 * accounting(c).totalParams;
}

/**
 * Bytes of the activations of one forward of `images` images (an estimate, high rather than
 * low): per token the block's inputs, q/k/v, attention output, k experts' hidden states and the
 * shared experts', plus each head's T × T attention scores.
 */
export function activationBytes(c: DiTConfig, images: number): number {
  const d = dims(c);
  const tokens = images * d.T;
  return 4 * (tokens * (16 * d.D + 3 * c.num_experts_per_tok * d.expertWidth + 3 * d.sharedWidth) + images * c.num_heads * d.T * d.T);
}

/**
 * A model of configuration `c` run on `kernels` with batches of `images` images: refused when
 * the weights and activations do not fit (the wasm memory, or this machine).
 */
export function checkModelFits(c: DiTConfig, kernels: Kernels, images: number, where: string): void {
  const weights = weightBytes(c);
  const total = weights + activationBytes(c, images);
  const remedy = weights + activationBytes(c, 1) > WASM_MEMORY_BYTES ? 'the wasm backend does not hold models this large yet: use --backend ref' : 'use fewer images at once (or --backend ref)';
  if (kernels.name.startsWith('wasm')) checkBytes(total, `the model (${GB(weights)} of weights) with a batch of ${images} images`, where, WASM_MEMORY_BYTES, remedy);
  checkBytes(2 * weights + activationBytes(c, images), `the model (${GB(weights)} of weights) with a batch of ${images} images`, where);
}

/** A picture of width × height pixels, refused beyond MAX_PIXELS. */
export function checkPixels(width: number, height: number, where: string): void {
  if (!(width * height <= MAX_PIXELS)) throw new DitMoeError(`would make a ${width} × ${height} picture, more than ${MAX_PIXELS / 1e6} megapixels`, where);
}
