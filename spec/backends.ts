/**
 * The backends every shared suite runs against (TensorFlow.js's describeWithFlags, for us
 * `describe.each(backends())`). The wasm backend joins the list once it is built.
 */
import { refKernels, type Kernels } from '../ref/kernels.js';

const list: [string, Kernels][] = [['ref', refKernels]];

export function backends(): [string, Kernels][] {
  return list;
}
