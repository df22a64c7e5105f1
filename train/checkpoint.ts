/**
 * Training checkpoints as one safetensors file (written atomically: a temporary file, then a
 * rename, so a crash never leaves half a checkpoint):
 *   <name>          the model weights under the official state_dict names (loadable as a model
 *                   by every command, and by the official PyTorch code via safetensors)
 *   ema.<name>      the EMA weights (when the run keeps an EMA)
 *   adam_m.<name>   AdamW's first and second moments of every trainable parameter
 *   adam_v.<name>
 *   __metadata__:   config (official keyword names, JSON), kind "checkpoint", objective, step, adam_step,
 *                   ema_updates, rng (the counter-based streams' state: seed and step),
 *                   train_args (JSON)
 * `readCheckpoint` restores all of it; `restoreTrainer` checks the configuration against the
 * run being resumed and names every field that differs.
 */
import { DitMoeError } from '../core/errors.js';
import type { DiTConfig } from '../ref/config.js';
import { configFromMetadata, loadWeights } from '../ref/model.js';
import { ParamStore } from '../ref/params.js';
import { parseSafetensors, serializeSafetensors, asFloat32, f32, type StTensor } from '../io/safetensors.js';
import { readBytes, writeFileAtomic } from '../node/files.js';
import type { Trainer, TrainArgs } from './trainer.js';

export interface Checkpoint {
  config: DiTConfig;
  args: TrainArgs;
  step: number;
  params: ParamStore;
  ema: Float32Array | null;
  emaUpdates: number;
  adamM: ParamStore;
  adamV: ParamStore;
  adamStep: number;
}

/** The bytes of a checkpoint of a trainer's current state. */
export function serializeCheckpoint(tr: Trainer): Uint8Array {
  const p = tr.model.params;
  const entries: [string, StTensor][] = [];
  for (const s of p.specs) entries.push([s.name, f32(s.shape, p.get(s.name))]);
  if (tr.ema) {
    const e = new ParamStore(p.specs, tr.ema.shadow);
    for (const s of p.specs) entries.push([`ema.${s.name}`, f32(s.shape, e.get(s.name))]);
  }
  for (const s of p.specs) if (s.trainable) entries.push([`adam_m.${s.name}`, f32(s.shape, tr.opt.m.get(s.name))]);
  for (const s of p.specs) if (s.trainable) entries.push([`adam_v.${s.name}`, f32(s.shape, tr.opt.v.get(s.name))]);
  return serializeSafetensors(entries, {
    kind: 'checkpoint',
    config: JSON.stringify(tr.model.config),
    objective: tr.args.objective,
    step: String(tr.step),
    adam_step: String(tr.opt.step),
    ema_updates: String(tr.ema?.updates ?? 0),
    rng: JSON.stringify({ scheme: 'counter streams (seed, purpose, index) → xoshiro128**', seed: tr.args.seed, step: tr.step }),
    train_args: JSON.stringify(tr.args),
  });
}

export function writeCheckpoint(file: string, tr: Trainer): void {
  writeFileAtomic(file, serializeCheckpoint(tr));
}

/** Model weights only (EMA weights when `useEma` and the run has them), with the config: the file to ship and sample from. */
export function serializeModel(tr: Trainer, useEma: boolean): Uint8Array {
  const p = tr.model.params;
  const src = useEma && tr.ema ? new ParamStore(p.specs, tr.ema.shadow) : p;
  const entries: [string, StTensor][] = p.specs.map((s) => [s.name, f32(s.shape, src.get(s.name))]);
  return serializeSafetensors(entries, { config: JSON.stringify(tr.model.config), objective: tr.args.objective, step: String(tr.step), weights: src === p ? 'model' : 'ema', train_args: JSON.stringify(tr.args) });
}

function intField(meta: Record<string, string>, key: string, where: string): number {
  const v = Number(meta[key]);
  if (meta[key] === undefined || !Number.isInteger(v) || v < 0) throw new DitMoeError(`__metadata__.${key} is ${meta[key] === undefined ? 'missing' : JSON.stringify(meta[key])}; not a training checkpoint`, where);
  return v;
}

/** Reads a checkpoint file written by writeCheckpoint. */
export function readCheckpoint(file: string): Checkpoint {
  return parseCheckpoint(readBytes(file), file);
}

/** A checkpoint from the bytes writeCheckpoint wrote; `file` names it in errors. */
export function parseCheckpoint(bytes: Uint8Array, file: string): Checkpoint {
  const st = parseSafetensors(bytes, file);
  const meta = st.metadata;
  if (meta.kind !== 'checkpoint') throw new DitMoeError(`is not a training checkpoint (__metadata__.kind is ${JSON.stringify(meta.kind)})`, file);
  const config = configFromMetadata(meta, file);
  let args: TrainArgs;
  try {
    args = JSON.parse(meta.train_args ?? '') as TrainArgs;
  } catch {
    throw new DitMoeError('__metadata__.train_args is missing or not JSON', file);
  }
  const step = intField(meta, 'step', file);
  const adamStep = intField(meta, 'adam_step', file);
  const emaUpdates = intField(meta, 'ema_updates', file);
  const model = new Map<string, StTensor>();
  for (const [k, v] of st.tensors) if (!/^(ema|adam_m|adam_v)\./.test(k)) model.set(k, v);
  const { params } = loadWeights(config, model, file);
  const part = (prefix: string, trainableOnly: boolean): ParamStore | null => {
    const out = params.zerosLike();
    let found = 0;
    for (const s of params.specs) {
      if (trainableOnly && !s.trainable) continue;
      const t = st.tensors.get(prefix + s.name);
      if (!t) continue;
      const data = asFloat32(t);
      if (data.length !== out.get(s.name).length) throw new DitMoeError(`${prefix}${s.name} has ${data.length} values, expected ${out.get(s.name).length}`, file);
      out.get(s.name).set(data);
      found++;
    }
    const want = params.specs.filter((s) => !trainableOnly || s.trainable).length;
    if (found === 0) return null;
    if (found !== want) throw new DitMoeError(`has ${found} of the ${want} tensors ${prefix}*; the checkpoint is incomplete`, file);
    return out;
  };
  const adamM = part('adam_m.', true);
  const adamV = part('adam_v.', true);
  if (!adamM || !adamV) throw new DitMoeError('has no optimiser state (adam_m.*, adam_v.*); it cannot be resumed', file);
  const ema = part('ema.', false);
  return { config, args, step, params, ema: ema ? ema.data : null, emaUpdates, adamM, adamV, adamStep };
}

/** The fields in which two configurations differ, as "field: a → b". */
export function configDifferences(a: DiTConfig, b: DiTConfig): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) {
    const va = (a as unknown as Record<string, unknown>)[k];
    const vb = (b as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(va) !== JSON.stringify(vb)) out.push(`${k}: ${JSON.stringify(va)} in the checkpoint, ${JSON.stringify(vb)} requested`);
  }
  return out;
}

/** Puts a checkpoint's state into a freshly built trainer (same config and arguments). */
export function restoreTrainer(tr: Trainer, ck: Checkpoint, where: string): void {
  const diffs = configDifferences(ck.config, tr.model.config);
  if (diffs.length) throw new DitMoeError(`was trained with another model configuration (${diffs.join('; ')})`, where);
  if ((ck.ema === null) !== (tr.ema === null)) throw new DitMoeError(ck.ema ? 'has EMA weights but the run has no --ema' : 'has no EMA weights but the run asks for --ema', where);
  tr.model.params.data.set(ck.params.data);
  tr.model.kernels.weightsChanged?.();
  tr.opt.m.data.set(ck.adamM.data);
  tr.opt.v.data.set(ck.adamV.data);
  tr.opt.step = ck.adamStep;
  if (tr.ema && ck.ema) {
    tr.ema.shadow.set(ck.ema);
    tr.ema.updates = ck.emaUpdates;
  }
  tr.step = ck.step;
}
