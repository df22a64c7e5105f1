/**
 * Configuration inference: a DiTConfig from a state dict's tensor names and shapes alone (no
 * tensor bytes are read, so it works on any Map of shapes and runs in a browser).
 *
 *   x_embedder.proj.weight        [D, C, p, p]        → hidden_size D, in_channels C, patch_size p
 *   pos_embed                     [1, T, D]           → input_size = √T · p (absent: must be given)
 *   blocks.N.*                                        → depth = number of blocks
 *   blocks.0.attn.qkv / proj                          → timm layout (num_heads: preset table or given)
 *   blocks.0.attn.Wqkv / out_proj, q_norm.weight [hd] → flash layout, num_heads = D / hd
 *   blocks.0.moe.experts.E.*                          → num_experts (= rows of moe.gate.weight)
 *   blocks.0.moe.experts.0.gate_proj.weight [F, D]    → mlp_ratio = F / D
 *   blocks.0.moe.shared_experts.gate_proj.weight [Fs, D] → n_shared_experts = Fs / D (absent: 0)
 *   t_embedder.mlp.0.weight       [D, F_t]            → frequency_embedding_size F_t
 *   y_embedder.embedding_table.weight [R, D]          → num_classes = R − 1 (the null row, when
 *                                                       class_dropout_prob > 0, the official default)
 *   final_layer.linear.weight     [p²·C_out, D]       → learn_sigma = (C_out = 2C)
 *
 * What the shapes leave open takes a given value, else the official default:
 * num_experts_per_tok (2), class_dropout_prob (0.1), aux_loss_alpha (0.01), norm_topk_prob
 * (false), seq_aux (false); num_heads of the timm layout comes from the preset table when
 * depth, width and patch match a preset, else it must be given.
 * `configMismatch` compares any configuration with a file tensor by tensor.
 */
import { DitMoeError } from '../core/errors.js';
import { DEFAULT_CONFIG, PRESETS, validateConfig, type DiTConfig } from './config.js';
import { paramSpecs } from './params.js';
import { sameShape, shapeStr } from '../core/tensor.js';

/** Names and shapes of a state dict (a Map of StTensor fits). */
export type ShapeMap = ReadonlyMap<string, { readonly shape: readonly number[] }>;

/** Where a field's value came from. `unknown`: not determinable and not needed by the caller (num_heads for `info`). */
export type FieldSource = 'inferred' | 'preset' | 'given' | 'default' | 'unknown';

export interface InferredConfig {
  config: DiTConfig;
  sources: Record<keyof DiTConfig, FieldSource>;
  layout: 'timm' | 'flash';
  /** The preset whose depth, width and patch size match (e.g. 'S/2'), if any. */
  preset?: string;
}

export interface InferOptions {
  /** Names the file in errors. */
  where?: string;
  /** Values for the fields the shapes leave open (and input_size without pos_embed); fields the shapes determine ignore them. */
  given?: Partial<DiTConfig>;
  /** When num_heads cannot be known (timm layout, no preset match, not given): 'error' (default) or 'unknown' (num_heads = 1, marked unknown). */
  heads?: 'error' | 'unknown';
}

/**
 * Defaulted fields worth a note: they change the eval-mode forward (top-k) or the meaning of the
 * label table (whether its last row is the null class). norm_topk_prob also changes the forward,
 * but the official code fixes it to false, so its default is not a guess.
 */
export const FORWARD_RELEVANT_DEFAULTS: (keyof DiTConfig)[] = ['num_experts_per_tok', 'class_dropout_prob'];

/** Infers the configuration of a DiT-MoE state dict from its tensor names and shapes. */
export function inferConfig(shapes: ShapeMap, opts: InferOptions = {}): InferredConfig {
  const where = opts.where ?? 'state dict';
  const given = opts.given ?? {};
  const fail = (msg: string) => new DitMoeError(msg, where);
  const shapeOf = (name: string, rank: number): readonly number[] => {
    const t = shapes.get(name);
    if (!t) {
      const names = [...shapes.keys()];
      const hint = names.some((n) => n.startsWith('module.')) ? " (its names start with 'module.': a DataParallel wrapper's state dict; strip the prefix)" : names.length ? ` (its first names: ${names.slice(0, 3).join(', ')})` : ' (it holds no tensors)';
      throw fail(`has no tensor '${name}', so it is not a DiT-MoE state dict whose configuration can be inferred${hint}`);
    }
    if (t.shape.length !== rank || t.shape.some((d) => !Number.isInteger(d) || d < 1)) throw fail(`tensor '${name}' has shape ${shapeStr(t.shape)}, expected ${rank} positive dimensions`);
    return t.shape;
  };
  const sources = {} as Record<keyof DiTConfig, FieldSource>;
  const c: Partial<DiTConfig> = {};
  const set = <K extends keyof DiTConfig>(k: K, v: DiTConfig[K], s: FieldSource) => {
    c[k] = v;
    sources[k] = s;
  };
  const open = <K extends keyof DiTConfig>(k: K, fallback: DiTConfig[K] = DEFAULT_CONFIG[k]) => {
    if (given[k] !== undefined) set(k, given[k] as DiTConfig[K], 'given');
    else set(k, fallback, 'default');
  };

  // Patch embedding: [D, C, p, p]
  const [D, C, p, p2] = shapeOf('x_embedder.proj.weight', 4);
  if (p !== p2) throw fail(`x_embedder.proj.weight has shape ${shapeStr([D, C, p, p2])}: the patch is not square`);
  set('hidden_size', D, 'inferred');
  set('in_channels', C, 'inferred');
  set('patch_size', p, 'inferred');

  // Position embedding: [1, T, D], T = (input_size / p)²
  const pos = shapes.get('pos_embed');
  if (pos) {
    const [one, T, Dp] = shapeOf('pos_embed', 3);
    const grid = Math.round(Math.sqrt(T));
    if (one !== 1 || Dp !== D || grid * grid !== T) throw fail(`pos_embed has shape ${shapeStr(pos.shape)}, expected [1, T, ${D}] with T a square number of tokens`);
    set('input_size', grid * p, 'inferred');
  } else if (given.input_size !== undefined) set('input_size', given.input_size, 'given');
  else throw fail(`has no pos_embed, so the input size cannot be inferred: state it (--config '{"input_size": 32}' for 256×256 images)`);

  // Blocks: depth = number of blocks.N., numbered 0..depth-1
  const blockIds = new Set<number>();
  for (const name of shapes.keys()) {
    const m = /^blocks\.(\d+)\./.exec(name);
    if (m) blockIds.add(Number(m[1]));
  }
  if (blockIds.size === 0) throw fail('has no blocks.N.* tensors');
  const depth = blockIds.size;
  for (let i = 0; i < depth; i++) if (!blockIds.has(i)) throw fail(`its blocks are not numbered 0..${depth - 1}: blocks.${i} is missing`);
  set('depth', depth, 'inferred');

  // Attention layout
  const timm = shapes.has('blocks.0.attn.qkv.weight');
  const flash = shapes.has('blocks.0.attn.Wqkv.weight');
  if (timm === flash) throw fail(timm ? 'blocks.0 has both attn.qkv and attn.Wqkv' : 'blocks.0 has neither attn.qkv.weight (timm layout) nor attn.Wqkv.weight (flash layout)');
  set('use_flash_attn', flash, 'inferred');
  const presetName = Object.keys(PRESETS).find((k) => PRESETS[k].depth === depth && PRESETS[k].hidden_size === D && PRESETS[k].patch_size === p);
  if (flash) {
    const [hd] = shapeOf('blocks.0.attn.q_norm.weight', 1);
    if (D % hd !== 0) throw fail(`blocks.0.attn.q_norm.weight has ${hd} elements (the head size), which does not divide hidden size ${D}`);
    set('num_heads', D / hd, 'inferred');
  } else if (given.num_heads !== undefined) set('num_heads', given.num_heads, 'given');
  else if (presetName) set('num_heads', PRESETS[presetName].num_heads, 'preset');
  else if (opts.heads === 'unknown') set('num_heads', 1, 'unknown');
  else throw fail(`the number of attention heads is not in the file (timm layout: attn.qkv) and depth ${depth}, hidden size ${D}, patch ${p} match no preset: state it (--config '{"num_heads": H}')`);

  // Experts: blocks.0.moe.experts.E.*, numbered 0..E-1
  const expertIds = new Set<number>();
  for (const name of shapes.keys()) {
    const m = /^blocks\.0\.moe\.experts\.(\d+)\./.exec(name);
    if (m) expertIds.add(Number(m[1]));
  }
  const E = expertIds.size;
  if (E === 0) throw fail('blocks.0 has no moe.experts.N.* tensors');
  for (let e = 0; e < E; e++) if (!expertIds.has(e)) throw fail(`the experts of blocks.0 are not numbered 0..${E - 1}: moe.experts.${e} is missing`);
  set('num_experts', E, 'inferred');
  const [F] = shapeOf('blocks.0.moe.experts.0.gate_proj.weight', 2);
  set('mlp_ratio', F / D, 'inferred');
  const shared = shapes.get('blocks.0.moe.shared_experts.gate_proj.weight');
  if (shared) {
    const [Fs] = shapeOf('blocks.0.moe.shared_experts.gate_proj.weight', 2);
    if (Fs % D !== 0) throw fail(`the shared experts' width ${Fs} is not a multiple of hidden size ${D} (n_shared_experts · hidden_size)`);
    set('n_shared_experts', Fs / D, 'inferred');
  } else set('n_shared_experts', 0, 'inferred');
  if (E === 1) set('num_experts_per_tok', 1, 'inferred');
  else open('num_experts_per_tok', Math.min(E, DEFAULT_CONFIG.num_experts_per_tok));

  // Timestep and label embeddings
  set('frequency_embedding_size', shapeOf('t_embedder.mlp.0.weight', 2)[1], 'inferred');
  open('class_dropout_prob');
  const [rows] = shapeOf('y_embedder.embedding_table.weight', 2);
  const nullRow = c.class_dropout_prob! > 0 ? 1 : 0;
  if (rows - nullRow < 1) throw fail(`y_embedder.embedding_table.weight has ${rows} rows: no room for a class besides the null class`);
  set('num_classes', rows - nullRow, 'inferred');

  // Output channels: [p²·C_out, D]
  const [P] = shapeOf('final_layer.linear.weight', 2);
  if (P === p * p * 2 * C) set('learn_sigma', true, 'inferred');
  else if (P === p * p * C) set('learn_sigma', false, 'inferred');
  else throw fail(`final_layer.linear.weight has ${P} rows, expected p²·C = ${p * p * C} or p²·2C = ${p * p * 2 * C} (learned sigma)`);

  open('aux_loss_alpha');
  open('norm_topk_prob');
  open('seq_aux');

  let config: DiTConfig;
  try {
    config = validateConfig(c, ''); // '' : the message gets no second prefix
  } catch (e) {
    if (e instanceof DitMoeError) throw fail(`the inferred configuration is invalid: ${e.message}`);
    throw e;
  }
  // Every block must agree with block 0 (and nothing may be left over).
  const m = configMismatch(config, shapes);
  if (m.missing.length || m.wrongShape.length || m.unexpected.length) throw fail(`its tensors are not those of one DiT-MoE configuration (block 0 gives ${summarize(config)}): ${describeMismatch(m)}`);
  return { config, sources, layout: flash ? 'flash' : 'timm', preset: presetName };
}

export interface ConfigMismatch {
  missing: string[];
  unexpected: string[];
  wrongShape: { name: string; expected: number[]; got: number[] }[];
}

/** Compares the tensors a configuration needs with a file's, name by name. A missing pos_embed is fine (it is fixed and computed). */
export function configMismatch(config: DiTConfig, shapes: ShapeMap): ConfigMismatch {
  const out: ConfigMismatch = { missing: [], unexpected: [], wrongShape: [] };
  const known = new Set<string>();
  for (const s of paramSpecs(config)) {
    known.add(s.name);
    const t = shapes.get(s.name);
    if (!t) {
      if (s.name !== 'pos_embed') out.missing.push(s.name);
    } else if (!sameShape(t.shape, s.shape)) out.wrongShape.push({ name: s.name, expected: s.shape, got: [...t.shape] });
  }
  for (const name of shapes.keys()) if (!known.has(name)) out.unexpected.push(name);
  return out;
}

/** One line naming the tensors: "2 missing (a, b); 1 wrong-shaped (c: expected [4, 64], got [8, 64]); 3 unexpected (...)". */
export function describeMismatch(m: ConfigMismatch, limit = 6): string {
  const list = (xs: string[], sep = ', ') => xs.slice(0, limit).join(sep) + (xs.length > limit ? `${sep}… ${xs.length - limit} more` : '');
  const parts: string[] = [];
  if (m.missing.length) parts.push(`${m.missing.length} missing (${list(m.missing)})`);
  if (m.wrongShape.length) parts.push(`${m.wrongShape.length} wrong-shaped (${list(m.wrongShape.map((w) => `${w.name}: expected ${shapeStr(w.expected)}, got ${shapeStr(w.got)}`), '; ')})`);
  if (m.unexpected.length) parts.push(`${m.unexpected.length} unexpected (${list(m.unexpected)})`);
  return parts.join('; ');
}

/** "depth 12, hidden 384, patch 2, 8 experts, …": the fields a state dict shows. */
export function summarize(c: DiTConfig): string {
  return `depth ${c.depth}, hidden ${c.hidden_size}, patch ${c.patch_size}, input ${c.input_size}, ${c.in_channels} channels, ${c.num_experts} experts of width ${Math.round(c.mlp_ratio * c.hidden_size)}, shared ×${c.n_shared_experts}, ${c.num_classes} classes, ${c.use_flash_attn ? 'flash' : 'timm'} attention`;
}

/**
 * Checks that a stated configuration (`statedAs`: "--preset S/2", "--config", "__metadata__.config")
 * fits a file's tensors; otherwise one error naming the fields that differ from what the shapes
 * show (when they can be inferred) and the tensors at fault.
 */
export function checkConfigFits(config: DiTConfig, shapes: ShapeMap, where: string, statedAs: string): void {
  const m = configMismatch(config, shapes);
  if (!m.missing.length && !m.wrongShape.length && !m.unexpected.length) return;
  let fields = '';
  try {
    const { num_heads: _heads, ...open } = config; // the stated heads may not divide the file's width
    const inferred = inferConfig(shapes, { where, given: open, heads: 'unknown' });
    const diffs = (Object.keys(inferred.sources) as (keyof DiTConfig)[])
      .filter((k) => inferred.sources[k] === 'inferred' && config[k] !== inferred.config[k])
      .map((k) => `${k}: ${JSON.stringify(config[k])} stated, ${JSON.stringify(inferred.config[k])} in the file`);
    if (diffs.length) fields = ` (${diffs.join('; ')})`;
  } catch {
    /* the file is not inferable: the tensor list below says enough */
  }
  throw new DitMoeError(`does not fit ${statedAs}${fields}: ${describeMismatch(m)}`, where);
}
