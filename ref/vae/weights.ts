/** A VAE's (or TAESD's) weights by name, each a Float32Array; a missing name is a one-line error. */
import { DitMoeError } from '../../core/errors.js';
import type { Kernels } from '../kernels.js';

export class NamedWeights {
  constructor(
    readonly tensors: ReadonlyMap<string, Float32Array>,
    readonly where = 'weights',
  ) {}

  get(name: string): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new DitMoeError(`has no tensor '${name}'`, this.where);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }
}

/**
 * Moves `t` (the newest tensor of `kern`) down to `mark`: everything handed out since the mark
 * (the previous stage's output, scratch) is released and `t`'s values are in a fresh tensor
 * there. Keeps a chain of stages at two live activations without breaking newest-first release.
 */
export function moveDown(kern: Kernels, mark: number, t: Float32Array): Float32Array {
  const copy = t.slice();
  kern.release(mark);
  const out = kern.tensor(copy.length);
  out.set(copy);
  return out;
}
