/**
 * The package's entry: the typed library API. Everything here runs in a browser too
 * (no file system, no worker threads); the Node-only pieces live in `cli/` and `wasm/node.ts`.
 */
export * from './ref/errors.js';
export * from './ref/tensor.js';
export * from './ref/kernels.js';
export * from './ref/config.js';
export * from './ref/params.js';
export * from './ref/model.js';
export * from './ref/init.js';
export * from './ref/accounting.js';
export { linearForward, linearBackward } from './ref/linear.js';
export { layerNormForward, layerNormBackward } from './ref/layernorm.js';
export { attentionForward, attentionBackward } from './ref/attention.js';
export { swigluForward, swigluBackward, swigluExpertsForward, swigluExpertsBackward, type SwigluCall, type SwigluBackwardCall } from './ref/swiglu.js';
export { softmaxForward, softmaxBackward } from './ref/softmax.js';
export { siluForward, siluBackward } from './ref/activations.js';
export { modulateForward, modulateBackward, gatedResidualForward, gatedResidualBackward } from './ref/modulate.js';
export { routerForward, routerBackward, topK, type RouterOutput } from './ref/router.js';
export { balanceLossForward, balanceLossBackward } from './ref/balanceLoss.js';
export { moeForward, moeBackward, type MoeWeights, type MoeDims, type MoeCache } from './ref/moe.js';
export { moeExpertsForward, dispatchByExpert, gatherRows, scatterAddRows, scatterAddRowsBackward } from './ref/moeExperts.js';
export { selfAttentionForward, selfAttentionBackward } from './ref/selfAttention.js';
export { blockForward, blockBackward } from './ref/block.js';
export { timestepFrequencies, timestepEmbedForward } from './ref/timestepEmbedding.js';
export { labelEmbedForward, dropLabels } from './ref/labelEmbedding.js';
export { patchify, unpatchify, patchEmbedForward } from './ref/patchEmbed.js';
export { posEmbed2d } from './ref/posEmbed.js';
export * as diffusion from './ref/diffusion/index.js';
export * from './io/safetensors.js';
export * from './ref/weights.js';
export { memorySource, type ByteSource } from './io/byteSource.js';
export { openSafetensors, readRawTensor, widen, type TensorFile, type TensorRef, type RawTensor } from './io/tensorFile.js';
export { FileWeights, storedBytes, type WeightStoreOptions, type RangeReader, type ReadPlan } from './io/weightStore.js';
export { runCase, supportedKinds, registerCaseKind, compareTensors, formatCompareLine, type CaseContext, type CaseRunner, type CompareLine } from './conform/index.js';
