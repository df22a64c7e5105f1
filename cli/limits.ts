/**
 * Sizes bounded before allocating: what a command is asked to hold (a model's weights, a batch's
 * activations, a picture's pixels) is estimated from the configuration and the options, and a
 * request beyond the memory this process may use is one line naming the option, not a V8 heap
 * abort after a minute or a RangeError.
 *
 * The wasm backend holds its packed weights and the activations in one wasm32 memory of 4 GiB:
 * the weights in a bounded cache (wasm/weightCache.ts, DEFAULT_WEIGHT_BUDGET; a layer that does
 * not fit it is refused by the memory plan, cli/memoryBudget.ts), the activations in the rest.
 * The weights of a model file are placed by that plan within --memory-budget (resident or
 * streamed), so only a fresh --preset's float32 weights are counted here.
 */
import * as os from 'node:os';
import { DitMoeError } from '../core/errors.js';
import { dims, type DiTConfig } from '../ref/config.js';
import { accounting } from '../ref/accounting.js';
import type { Kernels } from '../ref/kernels.js';
import { DEFAULT_WEIGHT_BUDGET } from '../wasm/weightCache.js';

/** The memory a command may plan to use: half the machine's. */
export const MEMORY_BYTES = os.totalmem() / 2;
/** What a wasm32 memory addresses. */
export const WASM_MEMORY_BYTES = 2 ** 32;
/** What the wasm memory leaves for activations and scratch beside the weight cache. */
export const WASM_ACTIVATION_BYTES = WASM_MEMORY_BYTES - DEFAULT_WEIGHT_BUDGET;
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
 * its activations do not fit beside the weight cache in the wasm memory, or when the weights
 * this process holds outside the memory plan (`heldWeights`: a fresh --preset's float32
 * weights, the default; 0 for a model file, which the plan has placed), their packed copies and
 * the activations do not fit this machine.
 */
export function checkModelFits(c: DiTConfig, kernels: Kernels, images: number, where: string, heldWeights = weightBytes(c)): void {
  const act = activationBytes(c, images);
  const wasm = kernels.name.startsWith('wasm');
  if (wasm) checkBytes(act, `a batch of ${images} images`, where, WASM_ACTIVATION_BYTES, 'use fewer images at once (or --backend ref)');
  const packed = wasm ? Math.min(DEFAULT_WEIGHT_BUDGET, heldWeights) : 0;
  checkBytes(heldWeights + packed + act, heldWeights ? `the model (${GB(heldWeights)} of weights) with a batch of ${images} images` : `a batch of ${images} images`, where);
}

/** A picture of width × height pixels, refused beyond MAX_PIXELS. */
export function checkPixels(width: number, height: number, where: string): void {
  if (!(width * height <= MAX_PIXELS)) throw new DitMoeError(`would make a ${width} × ${height} picture, more than ${MAX_PIXELS / 1e6} megapixels`, where);
}
