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
import { DiTModel, configFromMetadata } from '../ref/model.js';
import { inferConfig, checkConfigFits, FORWARD_RELEVANT_DEFAULTS, type FieldSource, type ShapeMap } from '../ref/inferConfig.js';
import type { Kernels } from '../ref/kernels.js';
import type { StTensor } from '../io/safetensors.js';
import { openSafetensors, readRawTensor, toStTensor, type TensorFile, type TensorRef } from '../io/tensorFile.js';
import { FileWeights } from '../io/weightStore.js';
import type { WasmKernels } from '../wasm/backend.js';
import { readBytes } from '../node/files.js';
import { openFileSource, type FileSource } from '../node/fileSource.js';
import { readAheadReader } from '../node/readAhead.js';
import { planMemory } from './memoryBudget.js';
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
  /** --memory-budget in GB (default: what the machine can spare). */
  memoryBudget?: number;
  /** Progress of loading and of slow forwards (default: on stderr; null: none). */
  progress?: ((line: string, done: boolean) => void) | null;
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

const PT = /\.(pt|pth|bin|ckpt)$/i;

/**
 * Opens a model file by offset, whatever its format: its header or zip directory (and pickle)
 * read and checked, no tensor read. For .pt, the weights `opts.weights` asks for; for
 * safetensors, every tensor unless `opts.weights` is given (then those weights, prefixes
 * stripped). The source stays open (the store reads from it): `close` it when done.
 */
export async function openModelTensors(file: string, opts: ModelOptions = {}): Promise<{ file: TensorFile; source: FileSource }> {
  const weights = checkWeights(opts.weights);
  const source = openFileSource(file);
  try {
    if (PT.test(file)) {
      const { indexPtCheckpoint } = await import('../io/pt/checkpoint.js');
      return { file: indexPtCheckpoint(source, file, { weights }).file, source };
    }
    const st = openSafetensors(source, file);
    return { file: weights === undefined ? st : { ...st, tensors: pickRefs(st.tensors, weights, file) }, source };
  } catch (e) {
    source.close();
    throw e;
  }
}

/**
 * The same, picking the model's tensors of a training checkpoint of ours: `ema.*` by default when
 * present (the one default, as the official `find_model`; a note says so), else the plain names.
 * `fileTensors`: how many tensors the file holds in all (safetensors).
 */
export async function openModelWeights(file: string, opts: ModelOptions = {}): Promise<{ file: TensorFile; source: FileSource; fileTensors?: number }> {
  const r = await openModelTensors(file, opts);
  if (opts.weights !== undefined || PT.test(file)) return r;
  const hasEma = [...r.file.tensors.keys()].some((k) => k.startsWith('ema.'));
  if (hasEma) (opts.note ?? ((l: string) => process.stderr.write(l + '\n')))(`note: ${file} is a training checkpoint; using its EMA weights (--weights model for the raw ones)`);
  return { ...r, file: { ...r.file, tensors: pickRefs(r.file.tensors, hasEma ? 'ema' : 'model', file) }, fileTensors: r.file.tensors.size };
}

/** pickWeights for tensors not read yet: each renamed as its key (prefix stripped). */
function pickRefs(all: Map<string, TensorRef>, weights: 'model' | 'ema', file: string): Map<string, TensorRef> {
  return new Map([...pickWeights(all, weights, file)].map(([k, t]) => [k, { ...t, name: k }]));
}

/** Reads every tensor of an opened file (float16/bfloat16 widened, their dtype kept), then closes it. */
function readAll({ file, source }: { file: TensorFile; source: FileSource; fileTensors?: number }): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  try {
    const tensors = new Map<string, StTensor>();
    for (const t of file.tensors.values()) tensors.set(t.name, toStTensor(readRawTensor(file, t)));
    return { tensors, metadata: file.metadata };
  } finally {
    source.close();
  }
}

/**
 * Reads the tensors and metadata of a model file, whatever its format, tensor by tensor. For
 * .pt, the weights `opts.weights` asks for; for safetensors, every tensor as stored unless
 * `opts.weights` is given (then those weights, prefixes stripped) — `readModelWeights` always picks.
 */
export async function readModelTensors(file: string, opts: ModelOptions = {}): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string> }> {
  const r = readAll(await openModelTensors(file, opts));
  if (!opts.allowNonfinite) checkFiniteTensors(r.tensors, file);
  return r;
}

/** The model's tensors of a model file: for a training checkpoint of ours, `ema.*` (the default, when present) or the plain names (`model`). */
export async function readModelWeights(file: string, opts: ModelOptions = {}): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string>; fileTensors?: number }> {
  const opened = await openModelWeights(file, opts);
  const fileTensors = opened.fileTensors;
  const r = readAll(opened);
  if (!opts.allowNonfinite) checkFiniteTensors(r.tensors, file);
  return { ...r, fileTensors };
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

/**
 * The model and the file's metadata (a training checkpoint's `objective`, `step`, ...). The file
 * is read by offset into a weight store (io/weightStore.ts): resident when it fits the memory
 * budget, else streamed block by block with read-ahead (cli/memoryBudget.ts decides, and says
 * so on stderr when the model is large or streamed).
 */
export async function loadModelWithMetadata(file: string, kernels: Kernels, opts: ModelOptions = {}): Promise<{ model: DiTModel; metadata: Record<string, string> }> {
  const { file: f, source } = await openModelWeights(file, opts);
  try {
    const r = resolveModelConfig(file, f.tensors, f.metadata, opts);
    const say = opts.note ?? ((l: string) => process.stderr.write(l + '\n'));
    const note = defaultedNote(file, r);
    if (note) say(note);
    const wasm = kernels.name === 'wasm' && 'weightCache' in kernels;
    const plan = planMemory(f, r.config, wasm, opts.memoryBudget);
    if (!plan.resident || source.size > LOG_ABOVE || opts.memoryBudget !== undefined) say(plan.line);
    if (wasm) (kernels as WasmKernels).weightCache.budget = plan.wasmWeights;
    const progress = opts.progress === undefined ? stderrProgress() : opts.progress;
    const store: FileWeights = new FileWeights(f, r.config, {
      resident: plan.resident,
      reader: plan.resident ? undefined : readAheadReader(source),
      onRead: progress && source.size > LOG_ABOVE ? loadProgress(file, progress) : undefined,
      onScope: progress ? forwardProgress((): number => store.waitMs, progress) : undefined,
      check: opts.allowNonfinite ? undefined : (name, data, shape) => checkFiniteTensors([[name, { dtype: 'F32', shape, data }]], file),
    });
    if (plan.resident) source.close();
    return { model: new DiTModel(r.config, store, kernels), metadata: f.metadata };
  } catch (e) {
    source.close();
    throw e;
  }
}

/** Files above this size get the memory line and loading progress. */
const LOG_ABOVE = 256 * 2 ** 20;

function stderrProgress(): (line: string, done: boolean) => void {
  const tty = process.stderr.isTTY;
  return (line, done) => process.stderr.write(tty ? `\r${line}${done ? '\n' : ''}` : done ? `${line}\n` : '');
}

/** Bytes read while loading, at most every half second. */
function loadProgress(file: string, out: (line: string, done: boolean) => void): (done: number, total: number) => void {
  let last = 0;
  const t0 = Date.now();
  return (done, total) => {
    const now = Date.now();
    if (done < total && now - last < 500) return;
    last = now;
    out(`reading ${file}: ${(done / 1e9).toFixed(2)} / ${(total / 1e9).toFixed(2)} GB (${((now - t0) / 1000).toFixed(1)} s)`, done === total);
  };
}

/** A forward past 3 s shows the block it has reached (and the time spent waiting for the disk). */
function forwardProgress(waitMs: () => number, out: (line: string, done: boolean) => void): (scope: number, depth: number) => void {
  let t0 = 0;
  let wait0 = 0;
  return (scope, depth) => {
    const now = Date.now();
    if (scope < 0) {
      t0 = now;
      wait0 = waitMs();
      return;
    }
    if (now - t0 < 3000) return;
    const line = `forward: ${scope < depth ? `block ${scope + 1}/${depth}` : 'final layer'} (${((now - t0) / 1000).toFixed(1)} s, ${((waitMs() - wait0) / 1000).toFixed(1)} s waiting for the disk)`;
    out(line, scope === depth);
  };
}
