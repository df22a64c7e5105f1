/**
 * `--model FILE` for every command: a safetensors file or a PyTorch checkpoint (.pt/.pth/.ckpt).
 * The configuration, in order of precedence:
 *   --preset NAME                the preset's configuration (official defaults for the rest)
 *   the file's __metadata__.config (safetensors) or `config` entry (.pt)
 *   inference from the tensor shapes (ref/inferConfig.ts), the open fields (num_heads of the
 *                                timm layout without a preset match, top-k, …) from --config,
 *                                then `fallback` (conform: the case file's config), then the
 *                                preset table and the official defaults
 * and the fields of --config (a JSON object or a file holding one, any subset of the fields)
 * override the result. The configuration is then checked against the file tensor by tensor.
 * `--weights model|ema` picks the weights of a training checkpoint: by default `ema` when present
 * (the official `find_model`), else `model`, for .pt and for our safetensors checkpoints (plain
 * names plus `ema.*`) alike; a note says which when the file holds both.
 * Every float tensor read must be finite (cli/finite.ts) unless `allowNonfinite`.
 */
import * as fs from 'node:fs';
import { DitMoeError } from '../core/errors.js';
import { validateConfig, presetConfig, DEFAULT_CONFIG, type DiTConfig } from '../ref/config.js';
import { DiTModel, loadWeights, configFromMetadata } from '../ref/model.js';
import { inferConfig, checkConfigFits, FORWARD_RELEVANT_DEFAULTS, type FieldSource, type ShapeMap } from '../ref/inferConfig.js';
import type { Kernels } from '../ref/kernels.js';
import type { StTensor } from '../io/safetensors.js';
import { readBytes, readSafetensorsFile } from '../node/files.js';
import { checkFiniteTensors } from './finite.js';
import { pickWeights } from '../io/modelFile.js';

export interface ModelOptions {
  config?: string; // JSON text or a file holding it
  preset?: string;
  weights?: string; // 'model' | 'ema' (checked here: it arrives from the command line)
  /** Values for the fields the shapes leave open when inferring (conform: the case file's config). */
  fallback?: Partial<DiTConfig>;
  /** Where notes go (default: one line on stderr). */
  note?: (line: string) => void;
  /** Load weights holding NaN or infinities (--allow-nonfinite); refused otherwise. */
  allowNonfinite?: boolean;
}

export interface ResolvedConfig {
  config: DiTConfig;
  /** Where each field came from ('file' for a stored configuration). */
  sources: Record<keyof DiTConfig, FieldSource | 'file'>;
  /** How the configuration was obtained, for messages: "__metadata__.config", "--preset S/2", "inferred from the tensor shapes". */
  origin: string;
  /** The preset whose depth, width and patch match, when inferred. */
  preset?: string;
}

function readConfigText(text: string): { obj: unknown; where: string } {
  const isFile = !text.trim().startsWith('{') && fs.existsSync(text);
  const src = isFile ? new TextDecoder().decode(readBytes(text)) : text;
  try {
    return { obj: JSON.parse(src), where: isFile ? text : '--config' };
  } catch (e) {
    throw new DitMoeError(`is neither a JSON object nor a file holding one (${(e as Error).message})`, `--config ${isFile ? text : ''}`.trim());
  }
}

/** A complete configuration from --config (missing fields take the official defaults). */
export function parseConfigOption(text: string): DiTConfig {
  const { obj, where } = readConfigText(text);
  return validateConfig(obj, where);
}

/** The fields --config states (any subset): known names, each of the right type; the whole is checked once merged. */
export function parseConfigFields(text: string): Partial<DiTConfig> {
  const { obj, where } = readConfigText(text);
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DitMoeError('is not a JSON object', where);
  for (const [k, v] of Object.entries(obj)) {
    if (!(k in DEFAULT_CONFIG)) throw new DitMoeError(`unknown field '${k}' (known: ${Object.keys(DEFAULT_CONFIG).join(', ')})`, where);
    const want = typeof DEFAULT_CONFIG[k as keyof DiTConfig];
    if (typeof v !== want || (typeof v === 'number' && !Number.isFinite(v))) throw new DitMoeError(`${k} = ${JSON.stringify(v)}, expected ${want === 'boolean' ? 'true or false' : 'a finite number'}`, where);
  }
  return obj as Partial<DiTConfig>;
}

function checkWeights(w: string | undefined): 'model' | 'ema' | undefined {
  if (w !== undefined && w !== 'model' && w !== 'ema') throw new DitMoeError(`must be model or ema, not '${w}'`, '--weights');
  return w;
}

/**
 * Reads the tensors and metadata of a model file, whatever its format. For .pt, the weights
 * `opts.weights` asks for; for safetensors, every tensor as stored unless `opts.weights` is given
 * (then those weights, prefixes stripped) — `readModelWeights` always picks.
 */
export async function readModelTensors(file: string, opts: ModelOptions = {}): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string> }> {
  const weights = checkWeights(opts.weights);
  if (/\.(pt|pth|bin|ckpt)$/i.test(file)) {
    const { readPtCheckpoint } = await import('../io/pt/checkpoint.js');
    const ck = readPtCheckpoint(readBytes(file), file, { weights });
    if (!opts.allowNonfinite) checkFiniteTensors(ck.stateDict, file);
    return { tensors: ck.stateDict, metadata: ck.metadata };
  }
  const st = readSafetensorsFile(file);
  if (!opts.allowNonfinite) checkFiniteTensors(st.tensors, file);
  return weights === undefined ? st : { tensors: pickWeights(st.tensors, weights, file), metadata: st.metadata };
}

/** The model's tensors of a model file: for a training checkpoint of ours, `ema.*` (the default, when present) or the plain names (`model`). */
export async function readModelWeights(file: string, opts: ModelOptions = {}): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string>; fileTensors?: number }> {
  const r = await readModelTensors(file, opts);
  if (opts.weights !== undefined || /\.(pt|pth|bin|ckpt)$/i.test(file)) return r;
  const hasEma = [...r.tensors.keys()].some((k) => k.startsWith('ema.'));
  if (hasEma) (opts.note ?? ((l: string) => process.stderr.write(l + '\n')))(`note: ${file} is a training checkpoint; using its EMA weights (--weights model for the raw ones)`);
  return { tensors: pickWeights(r.tensors, hasEma ? 'ema' : 'model', file), metadata: r.metadata, fileTensors: r.tensors.size };
}

export { pickWeights };

/**
 * The configuration of a model file's tensors (see the top of this file), checked against them.
 * `heads: 'unknown'` lets inference leave num_heads open (for `info`, whose counts do not depend on it).
 */
export function resolveModelConfig(file: string, tensors: ShapeMap, metadata: Record<string, string>, opts: ModelOptions = {}, heads: 'error' | 'unknown' = 'error'): ResolvedConfig {
  const stated = opts.config ? parseConfigFields(opts.config) : {};
  const all = <T>(v: T) => Object.fromEntries(Object.keys(DEFAULT_CONFIG).map((k) => [k, v])) as Record<keyof DiTConfig, T>;
  let r: ResolvedConfig;
  if (opts.preset) {
    r = { config: presetConfig(opts.preset), sources: all<FieldSource | 'file'>('preset'), origin: `--preset ${opts.preset}` };
  } else if (metadata.config !== undefined) {
    r = { config: configFromMetadata(metadata, file), sources: all<FieldSource | 'file'>('file'), origin: '__metadata__.config' };
  } else {
    const inf = inferConfig(tensors, { where: file, given: { ...opts.fallback, ...stated }, heads });
    r = { config: inf.config, sources: { ...inf.sources }, origin: 'inferred from the tensor shapes', preset: inf.preset };
  }
  if (Object.keys(stated).length) {
    r.config = validateConfig({ ...r.config, ...stated }, '--config');
    for (const k of Object.keys(stated) as (keyof DiTConfig)[]) r.sources[k] = 'given';
    r.origin += ' and --config';
  }
  checkConfigFits(r.config, tensors, file, r.origin);
  return r;
}

/** The one-line note for fields inference had to default that change the forward (nothing when there are none). */
export function defaultedNote(file: string, r: ResolvedConfig): string | undefined {
  const defaulted = FORWARD_RELEVANT_DEFAULTS.filter((k) => r.sources[k] === 'default');
  if (!defaulted.length) return undefined;
  const what = defaulted.map((k) => (k === 'class_dropout_prob' ? `class_dropout_prob = ${r.config.class_dropout_prob} (the label table's last row is the null class)` : `${k} = ${JSON.stringify(r.config[k])}`));
  return `note: ${file} has no configuration; inferred from its tensor shapes, taking the official defaults ${what.join(', ')}; state others with --config`;
}

export async function loadModelFile(file: string, kernels: Kernels, opts: ModelOptions = {}): Promise<DiTModel> {
  return (await loadModelWithMetadata(file, kernels, opts)).model;
}

/** The model and the file's metadata (a training checkpoint's `objective`, `step`, ...), reading the file once. */
export async function loadModelWithMetadata(file: string, kernels: Kernels, opts: ModelOptions = {}): Promise<{ model: DiTModel; metadata: Record<string, string> }> {
  const { tensors, metadata } = await readModelWeights(file, opts);
  const r = resolveModelConfig(file, tensors, metadata, opts);
  const note = defaultedNote(file, r);
  if (note) (opts.note ?? ((l: string) => process.stderr.write(l + '\n')))(note);
  const { params } = loadWeights(r.config, tensors, file);
  return { model: new DiTModel(r.config, params, kernels), metadata };
}
