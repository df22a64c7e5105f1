/** Messages between the explorer page (main.ts) and its sampling worker (worker.ts). */
import type { SamplerName } from '../../dist/index.js';

export interface ModelInfo {
  name: string;
  format: 'safetensors' | 'pt';
  inChannels: number;
  size: number; // input_size (pixels or latent cells per side)
  patch: number;
  grid: number; // patches per side
  layers: number;
  experts: number;
  k: number;
  shared: number; // n_shared_experts
  classes: number;
  params: number;
  samplers: SamplerName[]; // the samplers this model can use, the default first
  note: string; // a remark on the configuration ('' when none)
}

export interface SampleSettings {
  labels: number[];
  sampler: SamplerName;
  steps: number;
  cfg: number;
  seed: number;
  k: number;
  off: number[][]; // per layer, experts switched off
}

export type ToWorker =
  | { type: 'init'; threads: number }
  | { type: 'load'; name: string; bytes: ArrayBuffer; config: string } // config: JSON of the fields a file without one leaves open, or ''
  | { type: 'sample'; settings: SampleSettings };

export interface StepRouting {
  experts: Int32Array[]; // [L] of [N, T, k], each token's experts by weight, largest first
  scores: Float32Array[]; // [L] of [N, T, E]
}

export type FromWorker =
  | { type: 'ready'; threads: number; isolated: boolean }
  | { type: 'model'; info: ModelInfo }
  | { type: 'step'; step: number; steps: number; predX0: Float32Array; msPerStep: number; routing: StepRouting; load: number[][]; classExpert: number[][][] }
  | { type: 'done'; samples: Float32Array; ms: number; msPerStep: number }
  | { type: 'error'; message: string; during: 'init' | 'load' | 'sample' };
