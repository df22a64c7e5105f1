/**
 * Our training checkpoints ⇄ the official `train.py` checkpoints (io/pt/officialCheckpoint.ts).
 *
 * The parameter order: `torch.optim.AdamW(model.parameters())` numbers the parameters of the
 * official `DiT` as `model.parameters()` yields them: a module's own parameters first, then its
 * children in the order `__init__` registers them. DiT registers x_embedder, t_embedder,
 * y_embedder, then its own `pos_embed`, blocks, final_layer, so `pos_embed` (DiT's only own
 * parameter) comes first: index 0, with no AdamW state (requires_grad=False). A block yields
 * attn, then moe (experts 0…E−1, gate, shared_experts), then adaLN_modulation. DiT has no
 * buffers, so this is exactly the order of `state_dict()` keys, and of `paramSpecs` (ref/params.ts):
 * opt index i ↔ paramSpecs(config)[i]. (Checked against the golden `tiny.model.pt` written by
 * the official code, and, where PyTorch is installed, against a module tree with the official
 * names: spec/officialCheckpoint.test.ts.)
 *
 * To the official format: `model` our weights, `ema` our EMA (a run without EMA writes its
 * weights there, what train.py's `update_ema(ema, model, decay=0)` starts from), `opt` our
 * moments with `step` = the AdamW step, `lr` the rate of the next step, and `args` a plain dict:
 * the train.py fields that mean the same here (model, image_size for 4-channel latents,
 * num_classes, num_experts, num_experts_per_tok, global_batch_size, global_seed, rf) and a
 * `dit_moe` section with what a bit-exact resume needs (config, train_args, step, ema_updates,
 * has_ema). train.py itself reads none of `args` when it resumes (its flags decide).
 *
 * From the official format: weights, EMA, moments by that order, step; the configuration from
 * `dit_moe.config`, else inferred from the tensor shapes with `args.model` (num_heads) and
 * `args.num_experts_per_tok`; the hyper-parameters from `dit_moe.train_args`, else from the
 * param group (lr, betas, eps, weight_decay) and `args` (global_batch_size, global_seed, rf),
 * else from the flags. A DeepSpeed model-states file gives weights and `global_steps`; its
 * moments (ZeRO shards) are not read, so AdamW starts afresh there, which is said.
 */
import { DitMoeError } from '../core/errors.js';
import { PRESETS, validateConfig, type DiTConfig } from '../ref/config.js';
import { inferConfig } from '../ref/inferConfig.js';
import { configFromMetadata, loadWeights } from '../ref/model.js';
import { paramSpecs, ParamStore } from '../ref/params.js';
import { asFloat32, f32, type StTensor } from '../io/safetensors.js';
import { ARGS_SECTION, readOfficialCheckpoint, writeOfficialCheckpoint, type AdamState, type OfficialCheckpoint, type PlainValue } from '../io/pt/officialCheckpoint.js';
import type { Checkpoint } from './checkpoint.js';
import { learningRate } from './schedule.js';
import { DEFAULT_TRAIN_ARGS, type TrainArgs } from './trainer.js';

const SECTION_FORMAT = 1;
/** The official EMA: `update_ema(ema, model)` with decay 0.9999 after every step. */
export const OFFICIAL_EMA_DECAY = 0.9999;

/** The official preset name (`DiT_models` key) of a configuration, if its depth, width, patch and heads match one. */
export function officialModelName(c: DiTConfig): string | undefined {
  for (const [k, p] of Object.entries(PRESETS)) if (p.depth === c.depth && p.hidden_size === c.hidden_size && p.patch_size === c.patch_size && p.num_heads === c.num_heads) return `DiT-${k}`;
  return undefined;
}

/** The official DiT's fixed values: the fields of a configuration it cannot build or run as configured. */
export function officialIncompatibilities(c: DiTConfig): string[] {
  const fixed: [keyof DiTConfig, unknown][] = [['n_shared_experts', 2], ['frequency_embedding_size', 256], ['aux_loss_alpha', 0.01], ['norm_topk_prob', false], ['seq_aux', false]];
  return fixed.filter(([k, v]) => c[k] !== v).map(([k, v]) => `${k} ${JSON.stringify(c[k])} (official: ${JSON.stringify(v)})`);
}

/** A training checkpoint of ours → the bytes of the checkpoint train.py would have saved. */
export function checkpointToOfficial(ck: Checkpoint): Uint8Array {
  const specs = ck.params.specs;
  const c = ck.config;
  const a = ck.args;
  const tensors = (store: ParamStore) => new Map(specs.map((s): [string, StTensor] => [s.name, f32(s.shape, store.get(s.name))]));
  const state: [number, AdamState][] = [];
  if (ck.adamStep > 0) {
    specs.forEach((s, i) => {
      if (s.trainable) state.push([i, { step: ck.adamStep, expAvg: f32(s.shape, ck.adamM.get(s.name)), expAvgSq: f32(s.shape, ck.adamV.get(s.name)) }]);
    });
  }
  const args: Record<string, PlainValue> = {};
  const name = officialModelName(c);
  if (name) args.model = name;
  if (c.in_channels === 4) args.image_size = c.input_size * 8; // train.py: latent side = image_size / 8
  Object.assign(args, { num_classes: c.num_classes, num_experts: c.num_experts, num_experts_per_tok: c.num_experts_per_tok, global_batch_size: a.batch, global_seed: a.seed, rf: a.objective === 'flow' });
  args[ARGS_SECTION] = {
    format: SECTION_FORMAT,
    config: { ...c },
    train_args: { ...a },
    step: ck.step,
    ema_updates: ck.emaUpdates,
    has_ema: ck.ema !== null,
  };
  return writeOfficialCheckpoint({
    model: tensors(ck.params),
    ema: tensors(ck.ema ? new ParamStore(specs, ck.ema) : ck.params),
    opt: {
      state,
      group: { lr: learningRate({ lr: a.lr, schedule: a.schedule, warmup: a.warmup, minLr: a.minLr, steps: a.steps }, ck.step), betas: [a.beta1, a.beta2], eps: a.eps, weightDecay: a.weightDecay, amsgrad: false, params: specs.map((_, i) => i) },
    },
    args,
  });
}

/** What the flags of `train` say, for what a checkpoint leaves open. */
export interface FlagDefaults {
  /** The configuration of --preset/--config when given explicitly. */
  config?: DiTConfig;
  /** The training arguments from the flags (defaults included). */
  args: TrainArgs;
  /** Which TrainArgs fields were given explicitly on the command line. */
  explicit: Set<keyof TrainArgs>;
}

export interface OfficialResume {
  ck: Checkpoint;
  /** One-line notes for the user (what was taken from where, what could not be restored). */
  notes: string[];
}

const isRecord = (v: PlainValue | undefined): v is Record<string, PlainValue> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `dit_moe` section of args, checked. */
function section(args: Record<string, PlainValue> | null, where: string): { config: DiTConfig; trainArgs: TrainArgs; step: number; emaUpdates: number; hasEma: boolean } | null {
  const s = args?.[ARGS_SECTION];
  if (s === undefined) return null;
  const at = `${where}: args['${ARGS_SECTION}']`;
  if (!isRecord(s) || s.format !== SECTION_FORMAT) throw new DitMoeError(`is ${JSON.stringify(s).slice(0, 60)}, expected a dict with format ${SECTION_FORMAT}`, at);
  const config = validateConfig(s.config, `${at}['config']`);
  const ta = s.train_args;
  if (!isRecord(ta)) throw new DitMoeError("['train_args'] is not a dict", at);
  for (const [k, v] of Object.entries(DEFAULT_TRAIN_ARGS)) if (typeof ta[k] !== typeof v) throw new DitMoeError(`['train_args']['${k}'] is ${JSON.stringify(ta[k])}, expected a ${typeof v}`, at);
  const count = (k: string): number => {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new DitMoeError(`['${k}'] is ${JSON.stringify(v)}, expected a count`, at);
    return v;
  };
  if (typeof s.has_ema !== 'boolean') throw new DitMoeError(`['has_ema'] is ${JSON.stringify(s.has_ema)}, expected a bool`, at);
  return { config, trainArgs: { ...DEFAULT_TRAIN_ARGS, ...(ta as unknown as TrainArgs) }, step: count('step'), emaUpdates: count('ema_updates'), hasEma: s.has_ema };
}

/** train.py's args fields that we interpret, checked: an unknown value is an error naming it. */
function officialArgs(args: Record<string, PlainValue> | null, where: string) {
  const out: { model?: string; inputSize?: number; numClasses?: number; numExperts?: number; topK?: number; batch?: number; seed?: number; objective?: 'flow' | 'ddpm' } = {};
  if (!args) return out;
  const bad = (k: string, expected: string): never => {
    throw new DitMoeError(`is ${JSON.stringify(args[k])}, expected ${expected}`, `${where}: args.${k}`);
  };
  const posInt = (k: string): number | undefined => {
    const v = args[k];
    if (v === undefined || v === null) return undefined;
    return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : bad(k, 'a positive integer');
  };
  if (args.model !== undefined && args.model !== null) {
    const key = typeof args.model === 'string' ? args.model.replace(/^DiT-/, '') : '';
    if (!Object.hasOwn(PRESETS, key)) bad('model', `one of the official DiT_models (${Object.keys(PRESETS).map((k) => 'DiT-' + k).join(', ')})`);
    out.model = key;
  }
  const image = posInt('image_size');
  if (image !== undefined) out.inputSize = image % 8 === 0 ? image / 8 : bad('image_size', 'a multiple of 8 (the VAE downsamples by 8)');
  out.numClasses = posInt('num_classes');
  out.numExperts = posInt('num_experts');
  out.topK = posInt('num_experts_per_tok');
  out.batch = posInt('global_batch_size');
  const seed = args.global_seed;
  if (seed !== undefined && seed !== null) out.seed = typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0 ? seed : bad('global_seed', 'a non-negative integer');
  const rf = args.rf;
  if (rf !== undefined && rf !== null) out.objective = typeof rf === 'boolean' ? (rf ? 'flow' : 'ddpm') : bad('rf', 'True or False');
  return out;
}

/** The weights to start from (`ema` when present, as the official find_model), their configuration. */
function weightsAndConfig(oc: OfficialCheckpoint, which: 'model' | 'ema', where: string, flags: FlagDefaults): { weights: Map<string, StTensor>; config: DiTConfig; origin: string } {
  const weights = (which === 'ema' ? oc.ema : null) ?? oc.model ?? oc.ema;
  if (!weights) throw new DitMoeError('holds no weights', where);
  const sec = section(oc.args, where);
  const oa = officialArgs(oc.args, where);
  let config: DiTConfig;
  let origin: string;
  if (sec) {
    config = sec.config;
    origin = `args['${ARGS_SECTION}']['config']`;
  } else if (oc.config !== undefined) {
    config = configFromMetadata({ config: oc.config }, where);
    origin = 'the configuration it carries';
  } else {
    const given: Partial<DiTConfig> = { ...(flags.config ?? {}) };
    if (oa.model) given.num_heads = PRESETS[oa.model].num_heads;
    if (oa.topK !== undefined) given.num_experts_per_tok = oa.topK;
    if (oa.inputSize !== undefined) given.input_size = oa.inputSize;
    config = inferConfig(weights, { where, given }).config;
    origin = 'the tensor shapes and args';
    const check = (field: keyof DiTConfig, v: unknown, arg: string) => {
      if (v !== undefined && config[field] !== v) throw new DitMoeError(`args.${arg} says ${field} ${JSON.stringify(v)}, the weights have ${JSON.stringify(config[field])}`, where);
    };
    if (oa.model) for (const k of ['depth', 'hidden_size', 'patch_size'] as const) check(k, PRESETS[oa.model][k], 'model');
    check('input_size', oa.inputSize, 'image_size');
    check('num_classes', oa.numClasses, 'num_classes');
    check('num_experts', oa.numExperts, 'num_experts');
  }
  return { weights, config, origin };
}

/** `--init`: a new run starts from the checkpoint's weights (EMA when present, as find_model) and configuration. */
export function officialInit(oc: OfficialCheckpoint, where: string, flags: FlagDefaults): { config: DiTConfig; params: ParamStore; origin: string } {
  const { weights, config, origin } = weightsAndConfig(oc, 'ema', where, flags);
  const entry = oc.ema ? 'ema' : oc.layout === 'deepspeed' ? 'module' : oc.layout === 'state_dict' ? 'state dict' : 'model';
  return { config, params: loadWeights(config, weights, `${where}: ${entry}`).params, origin };
}

/**
 * `--resume` of an official checkpoint: our Checkpoint, the moments mapped by the parameter
 * order. Refuses an optimiser state that does not fit the model (count, order, shapes).
 */
export function officialToCheckpoint(oc: OfficialCheckpoint, where: string, flags: FlagDefaults): OfficialResume {
  const notes: string[] = [];
  const { weights, config, origin } = weightsAndConfig(oc, 'model', where, flags);
  const specs = paramSpecs(config);
  const params = loadWeights(config, weights, `${where}: ${oc.layout === 'deepspeed' ? 'module' : 'model'}`).params;
  const sec = section(oc.args, where);
  const oa = officialArgs(oc.args, where);

  // AdamW state, by the official parameter order
  const adamM = params.zerosLike();
  const adamV = params.zerosLike();
  let adamStep = 0;
  const opt = oc.opt;
  if (opt) {
    const at = `${where}: ${oc.layout === 'deepspeed' ? 'optimizer' : 'opt'}`;
    if (opt.groups.length !== 1) throw new DitMoeError(`has ${opt.groups.length} parameter groups; train.py's AdamW has one`, at);
    const g = opt.groups[0];
    if (g.amsgrad) throw new DitMoeError('uses amsgrad, which this AdamW does not implement', at);
    const want = specs.length;
    if (g.params.length !== want || g.params.some((p, i) => p !== i)) throw new DitMoeError(`covers ${g.params.length} parameters (${g.params.slice(0, 4).join(', ')}${g.params.length > 4 ? ', …' : ''}); the model has ${want}, numbered 0…${want - 1} in the official order`, at);
    const steps = new Set<number>();
    for (const [i, s] of opt.state) {
      const spec = specs[i];
      if (!spec) throw new DitMoeError(`has state for parameter ${i}; the model has ${want}`, at);
      if (!spec.trainable) throw new DitMoeError(`has state for parameter ${i} (${spec.name}), which has no gradient: the parameters are in another order`, at);
      for (const [t, dst] of [[s.expAvg, adamM], [s.expAvgSq, adamV]] as const) {
        if (t.shape.length !== spec.shape.length || t.shape.some((d, k) => d !== spec.shape[k])) throw new DitMoeError(`state ${i} has shape [${t.shape.join(', ')}], but parameter ${i} (${spec.name}) is [${spec.shape.join(', ')}]: the parameters are in another order, or it is another model`, at);
        dst.get(spec.name).set(asFloat32(t));
      }
      steps.add(s.step);
    }
    const trainable = specs.filter((s) => s.trainable).length;
    if (opt.state.size > 0 && opt.state.size !== trainable) throw new DitMoeError(`has state for ${opt.state.size} of the ${trainable} trainable parameters; every one needs its moments`, at);
    if (steps.size > 1) throw new DitMoeError(`its parameters' steps differ (${[...steps].slice(0, 4).join(', ')}); one AdamW step count is needed`, at);
    adamStep = steps.size ? [...steps][0] : 0;
  } else if (oc.layout === 'deepspeed') {
    notes.push(`note: ${where} holds no optimiser state (ZeRO keeps the moments in zero_pp_rank_*_optim_states.pt, which are not read): AdamW starts afresh from these weights`);
  } else {
    throw new DitMoeError("has no 'opt' entry: it cannot be resumed (use --init to start from its weights)", where);
  }

  const hasEma = (sec ? sec.hasEma : oc.ema !== null) && oc.ema !== null;

  // step
  const step = sec ? sec.step : oc.layout === 'deepspeed' ? (oc.globalSteps ?? adamStep) : adamStep;
  if (sec && sec.step < adamStep) throw new DitMoeError(`args says step ${sec.step}, but opt has taken ${adamStep} steps`, where);

  // hyper-parameters: our section, else the param group and args, else the flags
  let args: TrainArgs;
  if (sec) args = sec.trainArgs;
  else {
    const f = flags.args;
    const from = (field: keyof TrainArgs, v: unknown) => (v === undefined ? f[field] : v);
    const g = opt?.groups[0];
    const objective = from('objective', oa.objective) as TrainArgs['objective'];
    args = {
      ...f,
      objective,
      lr: from('lr', g?.lr) as number,
      beta1: from('beta1', g?.betas[0]) as number,
      beta2: from('beta2', g?.betas[1]) as number,
      eps: from('eps', g?.eps) as number,
      weightDecay: from('weightDecay', g?.weightDecay) as number,
      batch: from('batch', oa.batch) as number,
      microBatch: flags.explicit.has('microBatch') ? f.microBatch : (from('batch', oa.batch) as number),
      seed: from('seed', oa.seed) as number,
      labelDropout: flags.explicit.has('labelDropout') ? f.labelDropout : config.class_dropout_prob,
      ema: flags.explicit.has('ema') ? f.ema : hasEma ? OFFICIAL_EMA_DECAY : 0,
      emaWarmup: flags.explicit.has('emaWarmup') ? f.emaWarmup : false,
    };
    notes.push(`note: ${where} is an official checkpoint: configuration from ${origin}; lr ${args.lr}, betas (${args.beta1}, ${args.beta2}), eps ${args.eps}, weight_decay ${args.weightDecay} from its optimiser${oa.batch !== undefined ? `, batch ${args.batch}` : ''}${oa.seed !== undefined ? `, seed ${args.seed}` : ''}${oa.objective ? `, objective ${args.objective}` : ''} from its args; EMA ${args.ema ? `decay ${args.ema}${args.emaWarmup ? ' with warm-up' : ''}` : 'none'}; the rest from the flags`);
  }
  if (sec || opt) {
    // a flag that contradicts the checkpoint is refused, as for our own checkpoints
    for (const field of flags.explicit) {
      if (field === 'steps') continue;
      if (JSON.stringify(args[field]) !== JSON.stringify(flags.args[field])) throw new DitMoeError(`was trained with ${field} = ${JSON.stringify(args[field])}, not ${JSON.stringify(flags.args[field])}; resume with the same value (or start from its weights with --init)`, where);
    }
  }
  // the EMA, when the run keeps one
  const ema = hasEma && args.ema > 0 ? loadWeights(config, oc.ema!, `${where}: ema`).params.data : null;
  return { ck: { config, args, step, params, ema, emaUpdates: sec ? sec.emaUpdates : step, adamM, adamV, adamStep }, notes };
}

/** Reads an official checkpoint's bytes (train.py's dict or DeepSpeed's model states). */
export { readOfficialCheckpoint, ARGS_SECTION };
