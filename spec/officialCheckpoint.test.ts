/**
 * Outgrowing the CPU: our training checkpoints ⇄ the official train.py / DeepSpeed checkpoints.
 *
 * Independent references: the golden `tiny.model.pt` (its key order is the official
 * `state_dict()` order, written by the official code), the parameter-group keys PyTorch 1.13.1's
 * `torch.optim.AdamW(...).state_dict()` writes (read from torch, listed below), and, where a
 * Python with torch is installed, PyTorch itself (spec/official_torch.py): find_model +
 * load_state_dict(strict=True), AdamW.load_state_dict, and a file re-saved by torch.save the way
 * train.py saves it (args an argparse.Namespace), read back here. Without torch those tests are
 * skipped with a notice.
 * Equalities are bitwise: nothing is computed on the way, values are only moved.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { paramSpecs, ParamStore } from '../ref/params.js';
import { validateConfig, type DiTConfig } from '../ref/config.js';
import { DiTModel } from '../ref/model.js';
import { makeRng } from '../ref/diffusion/rng.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { readPtCheckpoint } from '../io/pt/checkpoint.js';
import { readZip } from '../io/pt/zip.js';
import { unpickle, PyObject, PtTensorRef, type PyValue } from '../io/pt/unpickle.js';
import { pickle, PickleCall, PickleDict, PickleFloat, PickleList, PickleTuple, type PickleValue } from '../io/pt/pickle.js';
import { pickleTensor, ptArchive, type PtStorageOut } from '../io/pt/checkpoint.js';
import { writeOfficialCheckpoint, type OfficialCheckpointParts } from '../io/pt/officialCheckpoint.js';
import { Trainer, DEFAULT_TRAIN_ARGS, type TrainArgs } from '../train/trainer.js';
import { serializeCheckpoint, parseCheckpoint, restoreTrainer, writeCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { checkpointToOfficial, officialToCheckpoint, readOfficialCheckpoint, officialInit, type FlagDefaults } from '../train/officialFormat.js';
import { checkDataset, type Dataset } from '../train/data.js';
import { resumeOfficial } from '../cli/official.js';
import { convertFile } from '../cli/commands/convert.js';
import { GOLDEN_DIR, golden } from './golden.js';
import { tinyModel, barsDataset, args as trainArgs, bitsEqual } from './trainHelpers.js';
import { expectOurError } from './errors.js';
import { runCli } from './runCli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditmoe-official-'));

function expectSameCheckpoint(got: Checkpoint, want: Checkpoint) {
  expect(got.config).toEqual(want.config);
  expect(got.args).toEqual(want.args);
  expect([got.step, got.adamStep, got.emaUpdates]).toEqual([want.step, want.adamStep, want.emaUpdates]);
  expect(got.params.specs.map((s) => s.name)).toEqual(want.params.specs.map((s) => s.name));
  expect(bitsEqual(got.params.data, want.params.data), 'weights').toBe(true);
  expect(got.ema === null).toBe(want.ema === null);
  if (want.ema) expect(bitsEqual(got.ema!, want.ema), 'EMA').toBe(true);
  expect(bitsEqual(got.adamM.data, want.adamM.data), 'first moments').toBe(true);
  expect(bitsEqual(got.adamV.data, want.adamV.data), 'second moments').toBe(true);
}

/** The flags of a plain `dit-moe train` (nothing explicit). */
const noFlags = (over: Partial<FlagDefaults> = {}): FlagDefaults => ({ args: { ...DEFAULT_TRAIN_ARGS }, explicit: new Set(), ...over });

/** A run of `steps` steps on the tiny model (EMA with warm-up, cosine schedule, clipping, micro-batches: every piece of state used). */
const RUN = trainArgs({ steps: 6, ema: 0.99, schedule: 'cosine', warmup: 2, clipGrad: 1, weightDecay: 0.01, batch: 8, microBatch: 4 });
function trained(steps: number, a: TrainArgs = RUN): Trainer {
  const tr = new Trainer(tinyModel(), barsDataset(12), a);
  for (let i = 0; i < steps; i++) tr.trainStep();
  return tr;
}

/** The data.pkl of a .pt, unpickled. */
function topOf(pt: Uint8Array): Map<PyValue, PyValue> {
  const zip = readZip(pt, 'pt');
  const e = zip.entries.find((x) => x.name.endsWith('/data.pkl'))!;
  return unpickle(zip.read(e)) as Map<PyValue, PyValue>;
}

describe('the pickle writer, for optimiser state dicts and args', () => {
  it('writes what CPython 3.11\'s pickle.dumps(protocol=2) writes: int keys, floats (1.0 too), a tuple, lists of one and of many, None, bools, an OrderedDict with _metadata (BUILD)', () => {
    // Python: od = OrderedDict(w=1); od._metadata = OrderedDict(dit_moe={'config': '{}'})
    //   pickle.dumps({'state': {1: {'step': 3.0, 'n': -70000}, 2: {}}, 'param_groups': [{'lr': 0.0001, 'betas': (0.9, 0.999),
    //     'eps': 1e-08, 'weight_decay': 0, 'amsgrad': False, 'foreach': None, 'maximize': False, 'capturable': False,
    //     'params': [0, 1, 2]}], 'one': [5], 'f1': 1.0, 'od': od}, protocol=2).hex()
    const PYTHON = '80027d7100285805000000737461746571017d7102284b017d710328580400000073746570710447400800000000000058010000006e71054a90eefeff754b027d710675580c000000706172616d5f67726f75707371075d71087d71092858020000006c72710a473f1a36e2eb1c432d58050000006265746173710b473feccccccccccccd473feff7ced916872b86710c5803000000657073710d473e45798ee2308c3a580c0000007765696768745f6465636179710e4b005807000000616d7367726164710f895807000000666f726561636871104e58080000006d6178696d697a65711189580a00000063617074757261626c657112895806000000706172616d7371135d7114284b004b014b0265756158030000006f6e6571155d71164b0561580200000066317117473ff000000000000058020000006f64711863636f6c6c656374696f6e730a4f726465726564446963740a71192952711a580100000077711b4b01737d711c58090000005f6d65746164617461711d68192952711e58070000006469745f6d6f65711f7d71205806000000636f6e666967712158020000007b7d712273737362752e';
    const group = new PickleDict([['lr', 0.0001], ['betas', new PickleTuple([0.9, 0.999])], ['eps', 1e-8], ['weight_decay', 0], ['amsgrad', false], ['foreach', null], ['maximize', false], ['capturable', false], ['params', new PickleList([0, 1, 2])]], false);
    const od = new PickleDict([['w', 1]], true, new PickleDict([['_metadata', new PickleDict([['dit_moe', new PickleDict([['config', '{}']], false)]], true)]], false));
    const obj = new PickleDict([
      ['state', new PickleDict([[1, new PickleDict([['step', new PickleFloat(3)], ['n', -70000]], false)], [2, new PickleDict([], false)]], false)],
      ['param_groups', new PickleList([group])], ['one', new PickleList([5])], ['f1', new PickleFloat(1)], ['od', od],
    ], false);
    expect(Buffer.from(pickle(obj)).toString('hex')).toBe(PYTHON);
  });
});

describe('the official parameter order', () => {
  it('paramSpecs = the key order of the golden tiny.model.pt (the official state_dict(), = model.parameters() for DiT, which has no buffers)', () => {
    const config = validateConfig(JSON.parse(golden('tiny.model.safetensors').metadata.config), 'golden');
    const pt = readPtCheckpoint(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.pt'))), 'tiny.model.pt');
    expect(paramSpecs(config).map((s) => s.name)).toEqual([...pt.stateDict.keys()]);
    expect(paramSpecs(config)[0]).toMatchObject({ name: 'pos_embed', trainable: false }); // DiT's own parameter: index 0
  });
});

describe('ours → train.py .pt → ours', () => {
  it('writes train.py\'s four entries; opt has state for every trainable index (not pos_embed, index 0) and the param-group keys of torch 1.13', () => {
    const tr = trained(2);
    const pt = checkpointToOfficial(parseCheckpoint(serializeCheckpoint(tr), 'ck'));
    const top = topOf(pt);
    expect([...top.keys()]).toEqual(['model', 'ema', 'opt', 'args']);
    const n = tr.model.params.specs.length;
    const opt = top.get('opt') as Map<PyValue, PyValue>;
    expect([...(opt.get('state') as Map<PyValue, PyValue>).keys()]).toEqual(Array.from({ length: n - 1 }, (_, i) => i + 1));
    const group = (opt.get('param_groups') as PyValue[])[0] as Map<PyValue, PyValue>;
    // torch 1.13.1: AdamW(model.parameters(), lr=1e-4, weight_decay=0).state_dict()['param_groups'][0].keys()
    expect([...group.keys()]).toEqual(['lr', 'betas', 'eps', 'weight_decay', 'amsgrad', 'foreach', 'maximize', 'capturable', 'params']);
    expect(group.get('params')).toEqual(Array.from({ length: n }, (_, i) => i));
    const st1 = (opt.get('state') as Map<PyValue, PyValue>).get(1) as Map<PyValue, PyValue>;
    expect([...st1.keys()]).toEqual(['step', 'exp_avg', 'exp_avg_sq']);
    expect((st1.get('step') as PtTensorRef).shape).toEqual([]); // a 0-d float32 tensor, as torch ≥ 1.12
    expect(top.get('args')).toBeInstanceOf(Map); // a plain dict, not an argparse.Namespace
    expect(top.get('args')).not.toBeInstanceOf(PyObject);
  });

  it('round trip: same weights, EMA, moments, step, config and arguments; the resumed run = the uninterrupted one, bit for bit', () => {
    const whole = trained(6);
    const first = trained(3);
    const ours = parseCheckpoint(serializeCheckpoint(first), 'ck');
    const pt = checkpointToOfficial(ours);
    const back = officialToCheckpoint(readOfficialCheckpoint(pt, 'ck.pt'), 'ck.pt', noFlags()).ck;
    expectSameCheckpoint(back, ours);

    const resumed = new Trainer(tinyModel({}, 99), barsDataset(12), back.args);
    restoreTrainer(resumed, back, 'ck.pt');
    for (let i = 0; i < 3; i++) resumed.trainStep();
    expect(bitsEqual(resumed.model.params.data, whole.model.params.data)).toBe(true);
    expect(bitsEqual(resumed.ema!.shadow, whole.ema!.shadow)).toBe(true);
    expect(bitsEqual(resumed.opt.m.data, whole.opt.m.data)).toBe(true);
    expect(bitsEqual(resumed.opt.v.data, whole.opt.v.data)).toBe(true);
    expect(bitsEqual(whole.model.params.data, first.model.params.data)).toBe(false); // the last 3 steps moved it
  });

  it('a run without EMA writes its weights as ema (what train.py starts its EMA from) and comes back without one', () => {
    const tr = trained(1, { ...RUN, ema: 0 });
    const ours = parseCheckpoint(serializeCheckpoint(tr), 'ck');
    const oc = readOfficialCheckpoint(checkpointToOfficial(ours), 'ck.pt');
    expect(bitsEqual(oc.ema!.get('blocks.0.moe.gate.weight')!.data as Float32Array, tr.model.params.get('blocks.0.moe.gate.weight'))).toBe(true);
    expectSameCheckpoint(officialToCheckpoint(oc, 'ck.pt', noFlags()).ck, ours);
  });
});

/** A checkpoint as train.py writes it (no dit_moe section), with the given changes. */
function officialParts(tr: Trainer, change: (p: OfficialCheckpointParts) => void = () => {}): OfficialCheckpointParts {
  const specs = tr.model.params.specs;
  const t = (s: ParamStore, name: string) => ({ dtype: 'F32' as const, shape: specs.find((x) => x.name === name)!.shape, data: s.get(name) });
  const sd = (s: ParamStore) => new Map(specs.map((x) => [x.name, t(s, x.name)]));
  const parts: OfficialCheckpointParts = {
    model: sd(tr.model.params),
    ema: sd(new ParamStore(specs, tr.ema!.shadow)),
    opt: {
      state: specs.flatMap((x, i) => (x.trainable ? [[i, { step: tr.opt.step, expAvg: t(tr.opt.m, x.name), expAvgSq: t(tr.opt.v, x.name) }] as [number, { step: number; expAvg: ReturnType<typeof t>; expAvgSq: ReturnType<typeof t> }]] : [])),
      group: { lr: 1e-4, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, amsgrad: false, params: specs.map((_, i) => i) },
    },
    args: { model: null, num_classes: 4, num_experts: 4, num_experts_per_tok: 2, global_batch_size: 8, global_seed: 7, rf: true, data_path: '/data/imagenet', epochs: 1400 },
  };
  change(parts);
  return parts;
}

describe('train.py checkpoints (no dit_moe section)', () => {
  const tr = trained(2);
  const flags = noFlags({ config: tr.model.config }); // num_heads of a timm-layout model off the preset table comes from the flags

  it('hyper-parameters from the param group and args, the rest from the flags; EMA 0.9999 without warm-up (update_ema)', () => {
    const r = officialToCheckpoint(readOfficialCheckpoint(writeOfficialCheckpoint(officialParts(tr)), 'ck.pt'), 'ck.pt', flags);
    expect(r.ck.args).toMatchObject({ lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, batch: 8, microBatch: 8, seed: 7, objective: 'flow', ema: 0.9999, emaWarmup: false });
    expect([r.ck.step, r.ck.adamStep, r.ck.emaUpdates]).toEqual([2, 2, 2]);
    expect(bitsEqual(r.ck.adamV.data, tr.opt.v.data)).toBe(true);
    expect(r.notes.join('\n')).toMatch(/official checkpoint: configuration from the tensor shapes and args; lr 0.0001, betas \(0.9, 0.95\)/);
    // a flag that contradicts the checkpoint is refused
    expectOurError(() => officialToCheckpoint(readOfficialCheckpoint(writeOfficialCheckpoint(officialParts(tr)), 'ck.pt'), 'ck.pt', { ...flags, args: { ...flags.args, lr: 0.1 }, explicit: new Set(['lr']) }), 'was trained with lr = 0.0001, not 0.1');
  });

  it('--init takes the EMA weights (as find_model) and the configuration', () => {
    const r = officialInit(readOfficialCheckpoint(writeOfficialCheckpoint(officialParts(tr)), 'ck.pt'), 'ck.pt', flags);
    expect(r.config).toEqual(tr.model.config);
    expect(bitsEqual(r.params.data, tr.ema!.shadow)).toBe(true);
  });

  it('bad input: opt of another count or order, unknown args values, amsgrad — one line naming the entry', () => {
    const read = (change: (p: OfficialCheckpointParts) => void) => () => officialToCheckpoint(readOfficialCheckpoint(writeOfficialCheckpoint(officialParts(tr, change)), 'ck.pt'), 'ck.pt', flags);
    expectOurError(read((p) => (p.opt.group.params = p.opt.group.params.slice(1))), 'ck.pt: opt', `covers ${tr.model.params.specs.length - 1} parameters`);
    expectOurError(read((p) => p.opt.state.unshift([0, p.opt.state[0][1]])), 'state for parameter 0 (pos_embed), which has no gradient');
    // two parameters of different shapes exchanged: x_embedder.proj.weight (1) ↔ .bias (2)
    expectOurError(read((p) => ([p.opt.state[0][1], p.opt.state[1][1]] = [p.opt.state[1][1], p.opt.state[0][1]])), 'parameter 1 (x_embedder.proj.weight)', 'another order');
    expectOurError(read((p) => p.opt.state.pop()), `state for ${tr.model.params.specs.length - 2} of the ${tr.model.params.specs.length - 1} trainable`);
    expectOurError(read((p) => (p.args.model = 'DiT-Q/3')), 'args.model', 'DiT-S/2');
    expectOurError(read((p) => (p.args.rf = 'yes')), 'args.rf', 'True or False');
    expectOurError(read((p) => (p.args.num_experts = 8)), 'args.num_experts says num_experts 8, the weights have 4');
    expectOurError(read((p) => (p.opt.group.amsgrad = true)), 'amsgrad');
  });
});

/** A DeepSpeed model-states file: weights under `module`, global_steps, param_shapes of torch.Size, no optimiser (ZeRO). */
function deepSpeedStates(weights: ParamStore, globalSteps: number): Uint8Array {
  const storages: PtStorageOut[] = [];
  const module = new PickleDict(weights.specs.map((s): [string, PickleValue] => [s.name, pickleTensor({ dtype: 'F32', shape: s.shape, data: weights.get(s.name) }, s.name, storages)]), true);
  const shapes = new PickleDict(weights.specs.map((s): [string, PickleValue] => [s.name, new PickleCall('torch', 'Size', [new PickleTuple(s.shape)])]), true);
  return ptArchive(new PickleDict([
    ['module', module], ['buffer_names', null], ['optimizer', null], ['param_shapes', new PickleTuple([shapes])], ['lr_scheduler', null],
    ['skipped_steps', 0], ['global_steps', globalSteps], ['global_samples', 8 * globalSteps], ['dp_world_size', 8], ['mp_world_size', 1], ['ds_version', '0.14.0'],
  ], false), storages);
}

describe('DeepSpeed checkpoints', () => {
  const m = tinyModel();
  const folder = path.join(tmp, 'ds', '0000005');
  fs.mkdirSync(path.join(folder, 'global_step5'), { recursive: true });
  fs.writeFileSync(path.join(folder, 'latest'), 'global_step5\n');
  fs.writeFileSync(path.join(folder, 'global_step5', 'mp_rank_00_model_states.pt'), deepSpeedStates(m.params, 5));

  it('a folder (tag named by latest) or its mp_rank_00_model_states.pt: weights and global_steps; AdamW afresh, said', () => {
    for (const p of [folder, path.join(folder, 'global_step5', 'mp_rank_00_model_states.pt')]) {
      const r = resumeOfficial(p, noFlags({ config: m.config }));
      expect(r.file).toBe(path.join(folder, 'global_step5', 'mp_rank_00_model_states.pt'));
      expect(bitsEqual(r.ck.params.data, m.params.data)).toBe(true);
      expect([r.ck.step, r.ck.adamStep, r.ck.ema]).toEqual([5, 0, null]);
      expect(r.notes.join('\n')).toContain('no optimiser state (ZeRO');
    }
  });

  it('a folder without model states: one line naming it', () => {
    const empty = path.join(tmp, 'ds', 'empty');
    fs.mkdirSync(empty, { recursive: true });
    expectOurError(() => resumeOfficial(empty, noFlags()), 'empty', 'without DeepSpeed model states');
  });
});

describe('dit-moe convert / train --resume ck.pt / --init', () => {
  const base = ['train', '--preset', 'mnist-tiny', '--batch', '8', '--backend', 'ref', '--ema', '0.9', '--sample-every', '0', '--samples-per-class', '1', '--sample-steps', '2'];
  const bad = (r: ReturnType<typeof runCli>, ...frags: string[]) => {
    expect(r.code, r.err).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    for (const f of frags) expect(r.err).toContain(f);
  };

  it('train 2 steps here, convert, resume from the .pt to step 4 = 4 steps without interruption (bitwise)', () => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    const c = path.join(tmp, 'c');
    expect(runCli(...base, '--steps', '4', '--out', a).code).toBe(0);
    expect(runCli(...base, '--steps', '2', '--out', b).code).toBe(0);
    const pt = path.join(tmp, 'b.pt');
    const cv = runCli('convert', path.join(b, 'checkpoint.safetensors'), pt);
    expect(cv.code, cv.err).toBe(0);
    // and back to a model file: the EMA weights (find_model's choice) with the configuration
    const weights = path.join(tmp, 'b-ema.safetensors');
    expect(runCli('convert', pt, weights).code).toBe(0);
    const ck = parseSafetensors(new Uint8Array(fs.readFileSync(path.join(b, 'checkpoint.safetensors'))), 'b');
    const w = parseSafetensors(new Uint8Array(fs.readFileSync(weights)), weights);
    expect(w.metadata.config).toBe(ck.metadata.config);
    expect(bitsEqual(w.tensors.get('final_layer.linear.weight')!.data as Float32Array, ck.tensors.get('ema.final_layer.linear.weight')!.data as Float32Array)).toBe(true);
    const r = runCli('train', '--resume', pt, '--steps', '4', '--backend', 'ref', '--sample-every', '0', '--samples-per-class', '1', '--sample-steps', '2', '--out', c);
    expect(r.code, r.err).toBe(0);
    const want = parseSafetensors(new Uint8Array(fs.readFileSync(path.join(a, 'checkpoint.safetensors'))), 'a');
    const got = parseSafetensors(new Uint8Array(fs.readFileSync(path.join(c, 'checkpoint.safetensors'))), 'c');
    expect(got.metadata.step).toBe('4');
    expect([...got.tensors.keys()]).toEqual([...want.tensors.keys()]);
    for (const [k, t] of want.tensors) expect(bitsEqual(got.tensors.get(k)!.data as Float32Array, t.data as Float32Array), k).toBe(true);

    // --init: a new run from its (EMA) weights
    const i = runCli(...base, '--steps', '1', '--init', pt, '--out', path.join(tmp, 'i'));
    expect(i.code, i.err).toBe(0);
    expect(i.err).toContain(`from the weights of ${pt}`);
  });

  it('bad input: one line, exit 2, nothing written', () => {
    const tr = trained(1);
    const f = (name: string, bytes: Uint8Array) => {
      const p = path.join(tmp, name);
      fs.writeFileSync(p, bytes);
      return p;
    };
    const wrongCount = f('count.pt', writeOfficialCheckpoint(officialParts(tr, (p) => (p.opt.group.params = p.opt.group.params.slice(2)))));
    const unknownArg = f('arg.pt', writeOfficialCheckpoint(officialParts(tr, (p) => (p.args.image_size = 100))));
    const noStates = path.join(tmp, 'ds-none');
    fs.mkdirSync(noStates);
    const cfg = JSON.stringify(tr.model.config);
    for (const [src, frags] of [[wrongCount, ['count.pt: opt', 'the model has']], [unknownArg, ['args.image_size', 'multiple of 8']], [noStates, ['ds-none', 'without DeepSpeed model states']]] as const) {
      const out = path.join(tmp, `never-${path.basename(src)}`);
      bad(runCli('train', '--resume', src, '--preset', 'custom', '--config', cfg, '--backend', 'ref', '--out', out), ...frags);
      expect(fs.existsSync(out)).toBe(false);
    }
    bad(runCli('train', '--resume', wrongCount, '--init', wrongCount, '--out', path.join(tmp, 'never')), '--init');
  });

  it('.safetensors → .pt → .safetensors keeps the configuration of plain weights (carried in the state dict\'s _metadata)', () => {
    const src = path.join(GOLDEN_DIR, 'tiny.model.safetensors');
    const pt = path.join(tmp, 'plain.pt');
    const back = path.join(tmp, 'plain.safetensors');
    convertFile(src, pt);
    convertFile(pt, back);
    const a = golden('tiny.model.safetensors');
    const b = parseSafetensors(new Uint8Array(fs.readFileSync(back)), back);
    expect(JSON.parse(b.metadata.config)).toEqual(JSON.parse(a.metadata.config));
    expect([...b.tensors.keys()]).toEqual([...readPtCheckpoint(new Uint8Array(fs.readFileSync(pt)), pt).stateDict.keys()]); // the keys stay the bare official names
  });
});

// ---------------------------------------------------------------------------------------------
// With PyTorch: the official way of loading, on our files.

/** The first Python that has torch (found without importing it: that takes seconds). */
function pythonWithTorch(): string | null {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3', 'python'].filter((x): x is string => !!x)) {
    const r = spawnSync(py, ['-c', "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return null;
}
const execFileP = promisify(execFile);
const PY = pythonWithTorch();
if (!PY) console.warn('notice: no Python with PyTorch found (python3-torch): the PyTorch checks of spec/officialCheckpoint.test.ts are skipped');

/** A random 8×8×4 data set of 10 classes (the golden model's input). */
function latentData(N = 8): Dataset {
  const rng = makeRng(5);
  const images = rng.fillNormal(new Float32Array(N * 4 * 64)).map((v) => Math.max(-1, Math.min(1, v / 2)));
  return checkDataset({ name: 'latents', images, labels: Int32Array.from({ length: N }, (_, i) => i % 10), N, C: 4, H: 8, W: 8, numClasses: 10 }, 'latents');
}

describe.skipIf(!PY)('with PyTorch (spec/official_torch.py)', () => {
  for (const name of ['tiny.model.safetensors', 'tiny_flash.model.safetensors']) {
    it(`${name}: find_model + load_state_dict(strict), weights_only, AdamW.load_state_dict moments = ours; torch.save of train.py read back`, async () => {
      const config: DiTConfig = validateConfig(JSON.parse(golden(name).metadata.config), name);
      const dir = fs.mkdtempSync(path.join(tmp, 'torch-'));
      const a: TrainArgs = { ...DEFAULT_TRAIN_ARGS, batch: 4, microBatch: 4, steps: 4, lr: 1e-3, ema: 0.99, labelDropout: 0.1, seed: 3 };
      const tr = new Trainer(new DiTModel(config, new DiTModel(config).params), latentData(), a);
      const src = golden(name);
      for (const s of tr.model.params.specs) tr.model.params.get(s.name).set(src.tensors.get(s.name)!.data as Float32Array);
      for (let i = 0; i < 2; i++) tr.trainStep();
      const ours = path.join(dir, 'checkpoint.safetensors');
      writeCheckpoint(ours, tr);
      const pt = path.join(dir, 'ck.pt');
      convertFile(ours, pt);
      const bare = path.join(dir, 'model.pt');
      fs.writeFileSync(path.join(dir, 'model.safetensors'), serializeSafetensors(new Map([...tr.model.params.specs].map((s) => [s.name, { dtype: 'F32' as const, shape: s.shape, data: tr.model.params.get(s.name) }])), { config: JSON.stringify(config) }));
      convertFile(path.join(dir, 'model.safetensors'), bare);
      const resaved = path.join(dir, 'resaved.pt');
      const caseFile = path.join(dir, 'case.json');
      fs.writeFileSync(caseFile, JSON.stringify({ config, ours, pt, bare_pt: bare, resaved, golden_pt: name === 'tiny.model.safetensors' ? path.join(GOLDEN_DIR, 'tiny.model.pt') : undefined }));
      // asynchronously: the worker stays responsive while PyTorch starts
      const r = await execFileP(PY!, [path.join(GOLDEN_DIR, '..', 'spec', 'official_torch.py'), caseFile], { encoding: 'utf8', timeout: 240_000 }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`spec/official_torch.py failed:\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`);
      });
      expect(r.stdout).toContain('every moment equals ours');
      expect(r.stdout).toContain('config carried');

      // torch's own file, as train.py writes it (args an argparse.Namespace): the same state comes back
      const want = parseCheckpoint(serializeCheckpoint(tr), ours);
      const flags: FlagDefaults = { config, args: a, explicit: new Set(['ema', 'emaWarmup', 'lr', 'steps', 'labelDropout']) };
      const got = officialToCheckpoint(readOfficialCheckpoint(new Uint8Array(fs.readFileSync(resaved)), resaved), resaved, flags).ck;
      expectSameCheckpoint(got, { ...want, args: { ...want.args, lr: 1e-3 } });
    }, 300_000);
  }
});
