/**
 * The package's Node entry, `dit-moe/node`: everything of `dit-moe` plus what needs Node —
 * the wasm backend on worker threads reading its kernels from the package, model files and
 * checkpoints from disk, data sets, training runs.
 */
export * from './index.js';
export { createWasmKernels, createWasmKernelsSync, createWasmKernelsUnshared, kernelsWasmPath, packageRoot } from './wasm/node.js';
export { createThreadPool } from './wasm/threads.js';
export { loadModelFile, loadModelWithMetadata, readModelTensors, readModelWeights, resolveModelConfig, type ModelOptions, type ResolvedConfig } from './cli/loadModel.js';
export { readBytes, readSafetensorsFile, writeFileAtomic } from './node/files.js';
export { Trainer, DEFAULT_TRAIN_ARGS, checkTrainArgs, type TrainArgs, type StepLog } from './train/trainer.js';
export { AdamW, ADAMW_DEFAULTS, type AdamWConfig } from './train/adamw.js';
export { Ema } from './train/ema.js';
export { learningRate, type LrSchedule, type LrScheduleConfig } from './train/schedule.js';
export { TRAIN_PRESETS, trainPresetConfig, type Objective } from './train/presets.js';
export { loadMnist, loadSafetensorsDataset, loadDataset, BatchSampler, type Dataset } from './train/data.js';
export { generateSamples, nearestNeighbours, evaluateSamples, type SampleSettings, type EvalReport } from './train/eval.js';
export { serializeCheckpoint, writeCheckpoint, serializeModel, readCheckpoint, restoreTrainer, type Checkpoint } from './train/checkpoint.js';
export { runTraining, checkpointPath, type RunOutputs, type RunHooks } from './train/run.js';
