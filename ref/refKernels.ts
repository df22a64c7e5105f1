/**
 * The reference backend of the `Kernels` interface (kernels.ts): the plain functions of `ref/`,
 * one loop nest each, behind the operand checks every backend shares (kernelChecks.ts).
 */
import type { Kernels } from './kernels.js';
import { withOperandChecks } from './kernelChecks.js';
import { linearForward, linearBackward } from './linear.js';
import { layerNormForward, layerNormBackward } from './layernorm.js';
import { attentionForward, attentionBackward } from './attention.js';
import { modulateForward, modulateBackward, gatedResidualForward, gatedResidualBackward } from './modulate.js';
import { swigluForward, swigluBackward, swigluExpertsForward, swigluExpertsBackward } from './swiglu.js';
import { moeExpertsForward, gatherRows, scatterAddRows, scatterAddRowsBackward } from './moeExperts.js';
import { conv2dForward } from './vae/conv2d.js';
import { groupNormForward } from './vae/groupnorm.js';

/** The reference kernels: the plain functions of `ref/`, one loop nest each. */
export const refKernels: Kernels = withOperandChecks({
  name: 'ref',
  linear: linearForward,
  linearBackward,
  layerNorm: layerNormForward,
  layerNormBackward,
  modulate: modulateForward,
  modulateBackward,
  gatedResidual: gatedResidualForward,
  gatedResidualBackward,
  attention: attentionForward,
  attentionBackward,
  swiglu: swigluForward,
  swigluBackward,
  swigluExperts: swigluExpertsForward,
  swigluExpertsBackward,
  gatherRows,
  scatterAddRows,
  scatterAddRowsBackward,
  moeExperts: moeExpertsForward,
  conv2d: conv2dForward,
  groupNorm: groupNormForward,
  tensor: (n) => new Float32Array(n), // the garbage collector frees it
  mark: () => 0,
  release: () => {},
});
