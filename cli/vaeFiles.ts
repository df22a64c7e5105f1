/**
 * `--vae PATH` and `--preview/--taesd PATH` for every command (Node: files and folders; the
 * library itself works on maps of tensors, io/vae/):
 *   a diffusers folder   config.json + diffusion_pytorch_model[.fp16].safetensors (or .bin)
 *   a single file        .safetensors, or a PyTorch .pt/.pth/.ckpt/.bin (a Stable Diffusion .ckpt
 *                        keeps its VAE under first_stage_model.: taken from there)
 * TAESD: taesd_decoder.{pth,safetensors} / taesd_encoder.* in taesd.py's names, or a diffusers
 * AutoencoderTiny folder or file (both halves).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitMoeError } from '../core/errors.js';
import type { Kernels } from '../ref/kernels.js';
import type { StTensor } from '../io/safetensors.js';
import { loadVaeFromTensors, type LoadedVae } from '../io/vae/load.js';
import { loadTaesdHalf, taesdHalves, type TaesdRole } from '../io/vae/taesd.js';
import { Taesd } from '../ref/vae/taesd.js';
import { readBytes, readSafetensorsFile } from '../node/files.js';
import { readPtCheckpoint } from '../io/pt/checkpoint.js';

export interface StateFile {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
  /** config.json of a diffusers folder, parsed. */
  config?: unknown;
  /** What to name in messages: the file read. */
  where: string;
}

function readWeightsFile(file: string): StateFile {
  if (/\.(pt|pth|bin|ckpt)$/i.test(file)) {
    const ck = readPtCheckpoint(readBytes(file), file);
    return { tensors: ck.stateDict, metadata: ck.metadata, where: file };
  }
  if (!/\.safetensors$/i.test(file)) throw new DitMoeError('is neither a .safetensors file, a PyTorch file (.pt, .pth, .ckpt, .bin) nor a diffusers folder', file);
  const st = readSafetensorsFile(file);
  return { tensors: st.tensors, metadata: st.metadata, where: file };
}

/** Reads the weights (and a folder's config.json) behind a --vae / --taesd path. */
export async function readStateFile(p: string): Promise<StateFile> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    throw new DitMoeError('no such file or folder', p);
  }
  if (!stat.isDirectory()) return readWeightsFile(p);
  const names = ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.bin', 'diffusion_pytorch_model.fp16.bin'];
  const found = names.map((n) => path.join(p, n)).find((f) => fs.existsSync(f));
  if (!found) throw new DitMoeError(`is a folder without ${names.join(', ')} (a diffusers model folder holds one of them next to config.json)`, p);
  const sf = readWeightsFile(found);
  const cfgFile = path.join(p, 'config.json');
  if (fs.existsSync(cfgFile)) {
    try {
      sf.config = JSON.parse(new TextDecoder().decode(readBytes(cfgFile)));
    } catch (e) {
      throw new DitMoeError(`is not JSON (${(e as Error).message})`, cfgFile);
    }
  }
  return sf;
}

export interface VaeFileOptions {
  /** GroupNorm groups when the configuration must be inferred. */
  groups?: number;
  note?: (line: string) => void;
}

/** The Stable Diffusion VAE behind a --vae path. */
export async function loadVaeFile(p: string, kernels: Kernels, opts: VaeFileOptions = {}): Promise<LoadedVae> {
  const sf = await readStateFile(p);
  return loadVaeFromTensors(sf.tensors, sf.metadata, sf.where, kernels, { config: sf.config, groups: opts.groups, note: opts.note ?? ((l) => process.stderr.write(l + '\n')) });
}

/** TAESD from one or two paths: each a half in taesd.py's names, or a diffusers AutoencoderTiny with both. */
export async function loadTaesdFiles(paths: string[], kernels: Kernels): Promise<Taesd> {
  const halves: Partial<Record<TaesdRole, ReturnType<typeof loadTaesdHalf>>> = {};
  for (const p of paths) {
    const sf = await readStateFile(p);
    const found = taesdHalves(sf.tensors, sf.where);
    for (const role of ['encoder', 'decoder'] as const) {
      const t = found[role];
      if (!t) continue;
      if (halves[role]) throw new DitMoeError(`holds a second TAESD ${role}`, sf.where);
      halves[role] = loadTaesdHalf(role, t, sf.where, kernels);
    }
  }
  return new Taesd(halves.encoder ?? null, halves.decoder ?? null);
}
