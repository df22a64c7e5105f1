/**
 * The official training checkpoints, bytes in, bytes out (no file system; runs in a browser):
 *
 * `train.py` (DDP) saves, every `--ckpt-every` steps,
 *   {"model": model.module.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "args": args}
 * with `opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)`, whose state dict is
 *   {"state": {i: {"step": tensor(float32, shape []), "exp_avg": m_i, "exp_avg_sq": v_i}, ...},
 *    "param_groups": [{"lr", "betas": (β1, β2), "eps", "weight_decay", "amsgrad", "foreach",
 *                      "maximize", "capturable", "params": [0, 1, ..., n−1]}]}
 * i indexing `model.parameters()` (the official DiT's order; a parameter without gradient,
 * `pos_embed`, has an index but no state). The group's keys are those PyTorch 1.13 writes;
 * later versions fill the keys they added (differentiable, fused) with defaults on load.
 * `args` is an argparse.Namespace in train.py's files; we write a plain dict, so that
 * `torch.load(weights_only=True)` reads the whole file.
 *
 * `train_deepspeed.py` saves a folder per checkpoint; its `mp_rank_00_model_states.pt` holds
 * the weights under `module`, `global_steps`, and (with ZeRO) no optimiser state (the moments
 * are sharded into `zero_pp_rank_*_optim_states.pt`, which we do not read).
 */
import { DitMoeError } from '../../core/errors.js';
import type { StTensor } from '../safetensors.js';
import { readZip } from './zip.js';
import { unpickle, describe, PtTensorRef, PyObject, PySet, type PyValue } from './unpickle.js';
import { PickleDict, PickleFloat, PickleList, PickleTuple, type PickleValue } from './pickle.js';
import { carriedConfig, OUR_KEY } from './stateDictConfig.js';
import { materialise, pickleTensor, ptArchive, viewElements, type PtStorageOut } from './checkpoint.js';
import { ELEMENT_BYTES, toStTensor } from '../tensorFile.js';

/** The section of `args` where our checkpoints keep what train.py's fields cannot say (train/officialFormat.ts). */
export const ARGS_SECTION = OUR_KEY;

/** JSON-like values: what `args` may hold (weights_only's allowlist: None, bool, int, float, str, list, tuple, dict). */
export type PlainValue = null | boolean | number | string | PlainValue[] | { [key: string]: PlainValue };

/** One parameter's AdamW state. */
export interface AdamState {
  step: number;
  expAvg: StTensor;
  expAvgSq: StTensor;
}

/** The single parameter group of torch.optim.AdamW. */
export interface AdamGroup {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  /** The parameter indices of the group, in order. */
  params: number[];
}

export interface AdamStateDict {
  /** By parameter index (indices without state are absent). */
  state: Map<number, AdamState>;
  groups: AdamGroup[];
}

export interface OfficialCheckpoint {
  /** `train.py`'s dict, a DeepSpeed model-states file, or a bare state dict (weights only). */
  layout: 'train.py' | 'deepspeed' | 'state_dict';
  /** `model` (train.py) or `module` (DeepSpeed). */
  model: Map<string, StTensor> | null;
  ema: Map<string, StTensor> | null;
  opt: AdamStateDict | null;
  /** `args` as plain values (from a dict or an argparse.Namespace); fields of other types are left out. */
  args: Record<string, PlainValue> | null;
  /** DeepSpeed's `global_steps`. */
  globalSteps?: number;
  /** A configuration (JSON) the file carries: a top-level `config` entry, or a state dict's `_metadata` (io/pt/stateDictConfig.ts). */
  config?: string;
}

/** Materialised tensors may take at most this multiple of the file's size (float16 doubles). */
const OUTPUT_BUDGET_FACTOR = 4;

/** Reads a train.py checkpoint or a DeepSpeed `mp_rank_00_model_states.pt`. */
export function readOfficialCheckpoint(bytes: Uint8Array, where: string): OfficialCheckpoint {
  const zip = readZip(bytes, where);
  const pkls = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) throw new DitMoeError(`holds ${pkls.length} '<root>/data.pkl' records, expected one: not a torch.save checkpoint`, where);
  const root = pkls[0].name.slice(0, -'/data.pkl'.length);
  const bo = zip.byName.get(`${root}/byteorder`);
  const littleEndian = !bo || new TextDecoder().decode(zip.read(bo)).trim() !== 'big';
  const top = unpickle(zip.read(pkls[0]), { where: `${where}: ${pkls[0].name}` });
  if (!(top instanceof Map)) throw new DitMoeError(`holds ${describe(top)}, not a training checkpoint`, where);

  const storages = new Map<string, Uint8Array>();
  const budget = OUTPUT_BUDGET_FACTOR * bytes.length + (1 << 20);
  let spent = 0;
  const tensor = (v: PyValue, at: string): StTensor => {
    if (!(v instanceof PtTensorRef)) throw new DitMoeError(`is ${describe(v)}, expected a tensor`, at);
    let raw = storages.get(v.storage.key);
    if (!raw) {
      const entry = zip.byName.get(`${root}/data/${v.storage.key}`);
      if (!entry) throw new DitMoeError(`its storage '${v.storage.key}' is missing from the archive`, at);
      raw = zip.read(entry);
      storages.set(v.storage.key, raw);
    }
    if (v.storage.dtype === 'U8') throw new DitMoeError('is built on an untyped (byte) storage', at);
    const es = ELEMENT_BYTES[v.storage.dtype];
    if (raw.length < v.storage.numel * es) throw new DitMoeError(`storage '${v.storage.key}' holds ${raw.length} bytes, fewer than its ${v.storage.numel} elements need`, at);
    const n = viewElements(v, at);
    spent += n * Math.max(es, 4);
    if (spent > budget) throw new DitMoeError(`the tensors would take more than ${OUTPUT_BUDGET_FACTOR}× the file's size: overlapping views?`, where);
    return toStTensor(materialise(v, n, v.offset, raw.subarray(v.offset * es), littleEndian)); // the bytes from the view's first element on
  };
  const stateDict = (key: string): Map<string, StTensor> | null => {
    const sd = top.get(key);
    if (sd === undefined || sd === null) return null;
    if (!(sd instanceof Map)) throw new DitMoeError(`'${key}' is ${describe(sd)}, expected a state dict`, where);
    const out = new Map<string, StTensor>();
    for (const [k, v] of sd) {
      if (typeof k !== 'string') throw new DitMoeError(`'${key}' has the key ${describe(k)}, expected parameter names`, where);
      out.set(k, tensor(v, `${where}: ${key}['${k}']`));
    }
    return out;
  };

  const isDeepSpeed = top.has('module') && !top.has('model');
  if (!isDeepSpeed && !top.has('model') && !top.has('ema')) {
    // a bare state dict (every value a tensor): the weights alone
    if (![...top.values()].every((v) => v instanceof PtTensorRef)) {
      const keys = [...top.keys()].slice(0, 8).map((k) => describe(k)).join(', ');
      throw new DitMoeError(`is neither a training checkpoint (no 'model', 'ema' or 'module' entry) nor a state dict (its entries: ${keys})`, where);
    }
    const sd = new Map<string, StTensor>();
    for (const [k, v] of top) sd.set(String(k), tensor(v, `${where}: tensor '${String(k)}'`));
    return { layout: 'state_dict', model: sd, ema: null, opt: null, args: null, config: carriedConfig(top) };
  }
  const config = top.get('config');
  const out: OfficialCheckpoint = {
    layout: isDeepSpeed ? 'deepspeed' : 'train.py',
    model: stateDict(isDeepSpeed ? 'module' : 'model'),
    ema: isDeepSpeed ? null : stateDict('ema'),
    opt: null,
    args: null,
    config: typeof config === 'string' ? config : undefined,
  };
  const opt = top.get(isDeepSpeed ? 'optimizer' : 'opt');
  if (opt !== undefined && opt !== null) out.opt = adamStateDict(opt, tensor, `${where}: ${isDeepSpeed ? 'optimizer' : 'opt'}`);
  const args = top.get('args');
  const argState = args instanceof PyObject ? args.state : args;
  if (argState instanceof Map) out.args = plainRecord(argState);
  const gs = top.get('global_steps');
  if (typeof gs === 'number' && Number.isSafeInteger(gs) && gs >= 0) out.globalSteps = gs;
  return out;
}

/** An optimiser state dict → AdamStateDict (checked: AdamW's keys, one entry per index). */
function adamStateDict(opt: PyValue, tensor: (v: PyValue, at: string) => StTensor, where: string): AdamStateDict {
  if (!(opt instanceof Map)) throw new DitMoeError(`is ${describe(opt)}, expected an optimizer state dict`, where);
  const state = opt.get('state');
  const groups = opt.get('param_groups');
  if (!(state instanceof Map) || !Array.isArray(groups)) throw new DitMoeError("has no 'state' dict and 'param_groups' list: not a torch.optim state dict", where);
  const out: AdamStateDict = { state: new Map(), groups: [] };
  for (const [k, s] of state) {
    const at = `${where}['state'][${describe(k)}]`;
    if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0) throw new DitMoeError('is not keyed by a parameter index', at);
    if (!(s instanceof Map)) throw new DitMoeError(`is ${describe(s)}, expected {'step', 'exp_avg', 'exp_avg_sq'}`, at);
    const extra = [...s.keys()].filter((x) => x !== 'step' && x !== 'exp_avg' && x !== 'exp_avg_sq');
    if (extra.length) throw new DitMoeError(`holds ${extra.map((x) => describe(x)).join(', ')}: not the state of AdamW without amsgrad`, at);
    const stepV = s.get('step');
    const step = stepV instanceof PtTensorRef ? (tensor(stepV, `${at}['step']`).data[0] as number) : stepV;
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) throw new DitMoeError(`'step' is ${describe(stepV)}, expected a count of steps`, at);
    out.state.set(k, { step, expAvg: tensor(s.get('exp_avg') ?? null, `${at}['exp_avg']`), expAvgSq: tensor(s.get('exp_avg_sq') ?? null, `${at}['exp_avg_sq']`) });
  }
  for (const [i, g] of groups.entries()) {
    const at = `${where}['param_groups'][${i}]`;
    if (!(g instanceof Map)) throw new DitMoeError(`is ${describe(g)}, expected a dict`, at);
    const num = (key: string): number => {
      const v = g.get(key);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new DitMoeError(`'${key}' is ${describe(v ?? undefined)}, expected a number`, at);
      return v;
    };
    const betas = g.get('betas');
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) throw new DitMoeError(`'betas' is ${describe(betas ?? undefined)}, expected two numbers`, at);
    const params = g.get('params');
    if (!Array.isArray(params) || !params.every((p) => typeof p === 'number' && Number.isSafeInteger(p))) throw new DitMoeError(`'params' is ${describe(params ?? undefined)}, expected parameter indices`, at);
    const amsgrad = g.get('amsgrad') ?? false;
    if (typeof amsgrad !== 'boolean') throw new DitMoeError(`'amsgrad' is ${describe(amsgrad)}, expected a bool`, at);
    out.groups.push({ lr: num('lr'), betas: [betas[0] as number, betas[1] as number], eps: num('eps'), weightDecay: num('weight_decay'), amsgrad, params: params as number[] });
  }
  return out;
}

/** A Python value as a plain value, or undefined when it has no plain form (tensors, objects). */
function plain(v: PyValue): PlainValue | undefined {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v) || v instanceof PySet) {
    const items = (Array.isArray(v) ? v : v.items).map(plain);
    return items.every((x) => x !== undefined) ? (items as PlainValue[]) : undefined;
  }
  if (v instanceof Map) return plainRecord(v);
  return undefined;
}

function plainRecord(m: Map<PyValue, PyValue>): Record<string, PlainValue> {
  const r: Record<string, PlainValue> = {};
  for (const [k, v] of m) {
    if (typeof k !== 'string') continue;
    const p = plain(v);
    if (p !== undefined) r[k] = p;
  }
  return r;
}

/** What `writeOfficialCheckpoint` writes: train.py's four entries. */
export interface OfficialCheckpointParts {
  model: Map<string, StTensor>;
  ema: Map<string, StTensor>;
  /** One parameter group over every index 0 … params−1; `state` by index. */
  opt: { state: [number, AdamState][]; group: AdamGroup };
  args: Record<string, PlainValue>;
}

/**
 * Writes `{"model", "ema", "opt", "args"}` as torch.save does: the state dicts as OrderedDicts,
 * storages numbered in pickling order (model, ema, then step/exp_avg/exp_avg_sq per index).
 */
export function writeOfficialCheckpoint(parts: OfficialCheckpointParts): Uint8Array {
  const storages: PtStorageOut[] = [];
  const sd = (m: Map<string, StTensor>) => new PickleDict([...m].map(([k, t]): [string, PickleValue] => [k, pickleTensor(t, k, storages)]), true);
  const model = sd(parts.model);
  const ema = sd(parts.ema);
  const state = parts.opt.state.map(([i, s]): [PickleValue, PickleValue] => [
    i,
    new PickleDict([
      ['step', pickleTensor({ dtype: 'F32', shape: [], data: new Float32Array([s.step]) }, `opt.state[${i}].step`, storages)],
      ['exp_avg', pickleTensor(s.expAvg, `opt.state[${i}].exp_avg`, storages)],
      ['exp_avg_sq', pickleTensor(s.expAvgSq, `opt.state[${i}].exp_avg_sq`, storages)],
    ], false),
  ]);
  const g = parts.opt.group;
  const group = new PickleDict([
    ['lr', new PickleFloat(g.lr)],
    ['betas', new PickleTuple([new PickleFloat(g.betas[0]), new PickleFloat(g.betas[1])])],
    ['eps', new PickleFloat(g.eps)],
    ['weight_decay', g.weightDecay], // an int when integral, as train.py's weight_decay=0
    ['amsgrad', g.amsgrad],
    ['foreach', null],
    ['maximize', false],
    ['capturable', false],
    ['params', new PickleList(g.params)],
  ], false);
  const opt = new PickleDict([['state', new PickleDict(state, false)], ['param_groups', new PickleList([group])]], false);
  const top = new PickleDict([['model', model], ['ema', ema], ['opt', opt], ['args', pickleArgs(parts.args)]], false);
  return ptArchive(top, storages);
}

function pickleArgs(v: PlainValue): PickleValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new DitMoeError(`args value ${v} is not finite`);
    return v;
  }
  if (Array.isArray(v)) return new PickleList(v.map(pickleArgs));
  return new PickleDict(Object.entries(v).map(([k, x]): [string, PickleValue] => [k, pickleArgs(x)]), false);
}
