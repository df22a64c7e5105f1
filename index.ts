/**
 * The package's entry: the typed library API. Everything here runs in a browser too
 * (no file system, no worker threads): `import ... from 'dit-moe'`. The Node-only pieces (worker
 * threads, files, checkpoints, training runs) are the entry `dit-moe/node` (node.ts).
 */
export * from './core/errors.js';
export * from './core/tensor.js';
export * from './ref/kernels.js';
export * from './ref/refKernels.js';
export { kernelChecks, withOperandChecks } from './ref/kernelChecks.js';
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
export { sampleWith, sampleImages, checkSampler, modelEvaluations, SAMPLERS, SAMPLER_LABELS, samplerNeeds, guidancePasses, predictionOf, type SamplerName, type SamplerSetup, type SampleRequest } from './ref/diffusion/sampling.js';
export { sampleDpmSolver, DpmSolver, discreteSchedule, flowSchedule, type DpmSolverSampleOptions } from './ref/diffusion/dpmSolver.js';
export { sampleHeun } from './ref/diffusion/heun.js';
export * from './io/safetensors.js';
export * from './io/modelFile.js';
export { runCase, supportedKinds, registerCaseKind, compareTensors, formatCompareLine, type CaseContext, type CaseRunner, type CompareLine } from './conform/index.js';
export { readOfficialCheckpoint, writeOfficialCheckpoint, type OfficialCheckpoint, type OfficialCheckpointParts } from './io/pt/officialCheckpoint.js';
export { conv2dForward, convShape, convOut, type Conv2dShape } from './ref/vae/conv2d.js';
export { groupNormForward } from './ref/vae/groupnorm.js';
export { upsampleNearest2x } from './ref/vae/upsample.js';
export { AutoencoderKL } from './ref/vae/autoencoderKL.js';
export { Taesd, TaesdHalf } from './ref/vae/taesd.js';
export { vaeConfigFrom, DEFAULT_VAE_CONFIG, type VaeConfig } from './ref/vae/config.js';
export { vaeParamSpecs } from './ref/vae/params.js';
export { gaussianMean, gaussianSample, scaleLatents } from './ref/vae/diagonalGaussian.js';
export { loadVaeFromTensors, inferVaeConfig, vaeMismatch, type LoadedVae } from './io/vae/load.js';
export { toDiffusersNames, type VaeNaming } from './io/vae/names.js';
export { loadTaesdHalf, taesdHalves } from './io/vae/taesd.js';
export { inferConfig, summarize as summarizeConfig, type InferredConfig } from './ref/inferConfig.js';
export { readPtCheckpoint, writePtCheckpoint, type PtCheckpoint, type PtReadOptions, type PtWriteOptions } from './io/pt/checkpoint.js';
export { ptToSafetensors, safetensorsToPt } from './io/pt/convert.js';
export { RoutingRecorder, guidanceLayout, type GuidanceLayout, type RecorderOptions, type LayerRouting, type WatchedStep, type LayerStats, type RoutingStats, type TracedForward } from './analysis/recorder.js';
export { createWasmKernelsFrom, createWasmKernelsAsync, createWasmKernelsOn, createSharedMemory, type WasmKernels, type WasmOptions, type KernelProfile } from './wasm/backend.js';
export { loadWasmKernels, createWasmKernelsFromUrl, threadsAvailable, fetchBytes, type BrowserWasmOptions } from './wasm/browser.js';
export { ablatedModel, type Ablation } from './analysis/ablation.js';
