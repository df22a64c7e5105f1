/**
 * The files of the official GPU training, for `train --resume/--init` and `convert`:
 *   a train.py checkpoint (`results/.../checkpoints/0050000.pt`), a bare state dict (.pt),
 *   a DeepSpeed checkpoint folder (train_deepspeed.py's `checkpoints/0010000/`, holding a tag
 *   folder named by its `latest` file, e.g. `global_step10000/mp_rank_00_model_states.pt`),
 *   or that model-states file itself.
 * Our own safetensors files go the existing ways (train/checkpoint.ts, cli/loadModel.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitMoeError } from '../core/errors.js';
import { loadWeights } from '../ref/model.js';
import type { DiTConfig } from '../ref/config.js';
import type { ParamStore } from '../ref/params.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { safetensorsToPt, type ConvertOptions } from '../io/pt/convert.js';
import { readOfficialCheckpoint, officialInit, officialToCheckpoint, checkpointToOfficial, officialIncompatibilities, type FlagDefaults, type OfficialResume } from '../train/officialFormat.js';
import { parseCheckpoint } from '../train/checkpoint.js';
import { readBytes } from '../node/files.js';
import { pickWeights, readModelTensors, resolveModelConfig } from './loadModel.js';

const PT = /\.(pt|pth|ckpt|bin)$/i;
const MODEL_STATES = 'mp_rank_00_model_states.pt';

/** True for what the official training writes (a .pt file or a DeepSpeed folder), false for our safetensors. */
export function isOfficialSource(p: string): boolean {
  return PT.test(p) || (fs.existsSync(p) && fs.statSync(p).isDirectory());
}

/** The .pt file to read: the path itself, or a DeepSpeed folder's model states. */
export function officialFile(p: string): string {
  if (!fs.existsSync(p)) throw new DitMoeError('no such file or folder', p);
  if (!fs.statSync(p).isDirectory()) return p;
  const direct = path.join(p, MODEL_STATES);
  if (fs.existsSync(direct)) return direct;
  const latest = path.join(p, 'latest');
  if (fs.existsSync(latest)) {
    const tag = fs.readFileSync(latest, 'utf8').trim();
    const f = path.join(p, tag, MODEL_STATES);
    if (tag && !tag.includes('..') && fs.existsSync(f)) return f;
    throw new DitMoeError(`is a DeepSpeed folder whose 'latest' names '${tag.slice(0, 40)}', which holds no ${MODEL_STATES}`, p);
  }
  const tags = fs.readdirSync(p).filter((d) => fs.existsSync(path.join(p, d, MODEL_STATES)));
  if (tags.length === 1) return path.join(p, tags[0], MODEL_STATES);
  if (tags.length > 1) throw new DitMoeError(`is a DeepSpeed folder with ${tags.length} checkpoints (${tags.slice(0, 3).join(', ')}) and no 'latest' file; name one of them`, p);
  throw new DitMoeError(`is a folder without DeepSpeed model states (no ${MODEL_STATES} in it, in a tag folder named by 'latest', or in a subfolder)`, p);
}

/** `--resume FILE|FOLDER` of the official training. */
export function resumeOfficial(p: string, flags: FlagDefaults): OfficialResume & { file: string } {
  const file = officialFile(p);
  return { ...officialToCheckpoint(readOfficialCheckpoint(readBytes(file), file), file, flags), file };
}

/**
 * `--init FILE|FOLDER`: the weights (the EMA when the file has one, as the official find_model)
 * and configuration of any checkpoint: official .pt or DeepSpeed, or our .safetensors.
 */
export async function initWeights(p: string, flags: FlagDefaults, note: (line: string) => void): Promise<{ config: DiTConfig; params: ParamStore; file: string }> {
  if (isOfficialSource(p)) {
    const file = officialFile(p);
    const r = officialInit(readOfficialCheckpoint(readBytes(file), file), file, flags);
    return { config: r.config, params: r.params, file };
  }
  const { tensors: all, metadata } = await readModelTensors(p);
  const hasEma = [...all.keys()].some((k) => k.startsWith('ema.'));
  const tensors = pickWeights(all, hasEma ? 'ema' : 'model', p);
  const r = resolveModelConfig(p, tensors, metadata, flags.config ? { config: JSON.stringify(flags.config) } : {});
  if (r.origin.startsWith('inferred')) note(`note: ${p} has no configuration; inferred from its tensor shapes`);
  return { config: r.config, params: loadWeights(r.config, tensors, p).params, file: p };
}

/**
 * `convert` of one of our training checkpoints (safetensors, kind "checkpoint") to .pt: the
 * checkpoint train.py writes; with --weights or --nest, one set of weights (by default the EMA
 * when there is one) as a model file. Undefined for any other safetensors file.
 */
export function trainingCheckpointToPt(bytes: Uint8Array, where: string, opts: ConvertOptions): Uint8Array | undefined {
  const st = parseSafetensors(bytes, where);
  if (st.metadata.kind !== 'checkpoint') return undefined;
  if (opts.weights === undefined && opts.nestUnder === undefined) {
    const ck = parseCheckpoint(bytes, where);
    const differ = officialIncompatibilities(ck.config);
    if (differ.length) process.stderr.write(`note: the official DiT fixes what this model sets otherwise: ${differ.join(', ')}; its code cannot build or run this model as configured\n`);
    return checkpointToOfficial(ck);
  }
  const hasEma = [...st.tensors.keys()].some((k) => k.startsWith('ema.'));
  const weights = pickWeights(st.tensors, opts.weights ?? (hasEma ? 'ema' : 'model'), where);
  return safetensorsToPt(serializeSafetensors(weights, st.metadata.config === undefined ? {} : { config: st.metadata.config }), where, opts);
}
