/**
 * Issue 14's probes of the command line, as a hostile or careless user runs them: nothing
 * silently wrong, nothing lost. Bad input is one line on stderr naming what is wrong, exit 2,
 * no stack trace, and the user's files untouched. (Spawns are grouped: ~0.3–1 s each.)
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GOLDEN_DIR } from './golden.js';
import { runCli as run } from './runCli.js';
import { parseSafetensors, serializeSafetensors, f32, i64, type StTensor } from '../io/safetensors.js';

const G = (f: string) => path.join(GOLDEN_DIR, f);
let dir = '';
const at = (f: string) => path.join(dir, f);

/** Exit 2, one line on stderr with every fragment, no stack trace. */
function bad(r: ReturnType<typeof run>, ...fragments: string[]) {
  expect(r.code, r.err + r.out).toBe(2);
  expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
  expect(r.err).not.toMatch(/\bat .*\.js:\d+/);
  for (const f of fragments) expect(r.err).toContain(f);
}

/** A copy of a safetensors file with `change` applied to its tensors. */
function variant(src: string, name: string, change: (t: Map<string, StTensor>) => void): string {
  const st = parseSafetensors(new Uint8Array(fs.readFileSync(src)));
  change(st.tensors);
  fs.writeFileSync(at(name), serializeSafetensors(st.tensors, st.metadata));
  return at(name);
}

/** A small data set of 16 images [16, 1, 28, 28] (MNIST's shape, other pixels). */
function dataset(name: string, N: number): string {
  const images = new Float32Array(N * 784).map((_, i) => 0.9 * Math.sin(i));
  fs.writeFileSync(at(name), serializeSafetensors([['images', f32([N, 1, 28, 28], images)], ['labels', i64([N], Array.from({ length: N }, (_, i) => i % 10))]]));
  return at(name);
}

const sha = (f: string) => fs.readFileSync(f).toString('base64');
const TRAIN = ['train', '--preset', 'mnist-tiny', '--batch', '8', '--backend', 'ref', '--sample-every', '0', '--samples-per-class', '1', '--sample-steps', '2'];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-safety-'));
  fs.copyFileSync(G('tiny.model.safetensors'), at('m.safetensors'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the oracle cannot be fooled', () => {
  it('compare fails a result with one NaN and names the element', () => {
    const nan = variant(G('tiny.forward.safetensors'), 'nan-result.safetensors', (t) => {
      (t.get('out.eps')!.data as Float32Array)[7] = NaN;
    });
    const c = run('compare', nan, G('tiny.forward.safetensors'));
    expect(c.code, c.out).toBe(1);
    expect(c.out).toMatch(/FAIL\s+out\.eps .*element \[0, 0, 0, 7\] is NaN/);
    expect(c.out).toMatch(/\d+ passed, 1 failed/);
  });
});

describe('an output that is an input is refused, the input untouched', () => {
  it('sample, conform, upcycle, convert: same path, ../, a symlink', () => {
    const m = at('m.safetensors');
    const before = sha(m);
    fs.mkdirSync(at('sub'), { recursive: true });
    fs.symlinkSync(m, at('link.safetensors'));
    bad(run('sample', '--model', m, '--out', m, '--steps', '1'), '--out', 'is the input --model');
    bad(run('sample', '--model', m, '--out', path.join(dir, 'sub', '..', 'link.safetensors'), '--steps', '1'), 'is the input --model');
    bad(run('sample', '--model', m, '--out', at('s.png'), '--trajectory', at('s.png'), '--steps', '1'), '--trajectory', 'also the output --out');
    bad(run('conform', G('tiny.forward.safetensors'), '--model', m, '--out', m), 'is the input --model');
    const kase = at('case.safetensors');
    fs.copyFileSync(G('tiny.forward.safetensors'), kase);
    bad(run('conform', kase, '--model', m, '--out', kase), 'is the input <case>');
    bad(run('upcycle', m, '--experts', '8', at('link.safetensors')), 'is the input <in>');
    bad(run('convert', m, m, '--dtype', 'f16'), 'is the input <in>');
    expect(sha(m)).toBe(before);
    expect(sha(kase)).toBe(sha(G('tiny.forward.safetensors')));
  });
});

describe('training runs are not lost', () => {
  it('resume into another run is refused; the data set is stored and checked; a finished run completes; stale temp files go', () => {
    const data = dataset('data.safetensors', 16);
    const a = at('runA');
    const r1 = run(...TRAIN, '--data', data, '--steps', '2', '--out', a);
    expect(r1.code, r1.err).toBe(0);
    // (3) resuming A's checkpoint into another run's folder
    const b = at('runB');
    expect(run(...TRAIN, '--steps', '1', '--out', b).code).toBe(0);
    const logB = fs.readFileSync(path.join(b, 'log.jsonl'), 'utf8');
    bad(run(...TRAIN, '--resume', path.join(a, 'checkpoint.safetensors'), '--steps', '3', '--out', b), `--out ${b}`, 'holds another run');
    expect(fs.readFileSync(path.join(b, 'log.jsonl'), 'utf8')).toBe(logB);
    // (4) the data set: another one refused; without --data the stored one is used
    bad(run(...TRAIN, '--resume', '--data', 'mnist', '--steps', '3', '--out', a), 'was trained on', 'data.safetensors', 'not mnist');
    const r2 = run(...TRAIN, '--resume', '--steps', '3', '--out', a);
    expect(r2.code, r2.err).toBe(0);
    expect(r2.err).toContain('on ' + data + ' (16 images)');
    dataset('data.safetensors', 24); // the file changes under the run
    bad(run(...TRAIN, '--resume', '--steps', '4', '--out', a), 'has changed since');
    dataset('data.safetensors', 16);
    // (5) killed between the last checkpoint and model.safetensors: --resume completes the outputs
    fs.rmSync(path.join(a, 'model.safetensors'));
    fs.rmSync(path.join(a, 'samples'), { recursive: true });
    // (6) and a temporary file of an interrupted write, by a process that is gone (pid 2^22 + 1 is above Linux's pid_max)
    const stale = path.join(a, `.checkpoint.safetensors.${2 ** 22 + 1}.1700000000000.tmp`);
    fs.writeFileSync(stale, 'partial');
    // --resume FILE without --out continues in FILE's folder
    const r3 = run(...TRAIN, '--resume', path.join(a, 'checkpoint.safetensors'));
    expect(r3.code, r3.err).toBe(0);
    expect(r3.err).toContain('complete at step 3');
    expect(fs.existsSync(path.join(a, 'model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(a, 'samples', 'step-000003.png'))).toBe(true);
    expect(fs.existsSync(stale)).toBe(false);
  });

  it('options are checked before any file is created', () => {
    const out = at('never');
    bad(run(...TRAIN, '--schedule', 'linear', '--out', out), '--schedule', 'linear');
    bad(run(...TRAIN, '--log-every', '0', '--out', out), '--log-every');
    bad(run(...TRAIN, '--time-limit', '-1', '--out', out), '--time-limit');
    bad(run(...TRAIN, '--seed', '1.5', '--out', out), '--seed');
    bad(run(...TRAIN, '--samples-per-class', '100000000', '--out', out), '--samples-per-class', 'needs about');
    expect(fs.existsSync(out)).toBe(false);
    fs.writeFileSync(at('a-file'), '');
    bad(run(...TRAIN, '--out', at('a-file')), 'exists and is not a folder');
  });
});

describe('one line, exit 2, no runaway memory', () => {
  it('sizes beyond what the input justifies', () => {
    const m = at('m.safetensors');
    bad(run('sample', '--model', m, '--count', '1000000000', '--backend', 'ref'), '--count 1000000000', 'needs about');
    bad(run('sample', '--model', m, '--count', '2', '--scale', '100000', '--backend', 'ref'), '--scale 100000', 'megapixels');
    bad(run('upcycle', m, '--experts', '100000', at('u.safetensors')), '--experts', 'at most 1024');
    bad(run('info', '--preset', 'S/2', '--experts', '1000000000'), 'num_experts', 'at most 1024');
    fs.writeFileSync(at('deep.json'), JSON.stringify({ depth: 1e9 }));
    bad(run('info', '--preset', 'S/2', '--config', at('deep.json')), 'depth', 'at most 256');
    bad(run('info', '/dev/zero'), '/dev/zero', 'not a regular file');
    // B/2 runs on wasm now (its weights in the bounded cache); G/2's 66 GB of fresh float32 weights do not fit this machine
    bad(run('sample', '--preset', 'G/2', '--experts', '16', '--backend', 'wasm', '--count', '1'), '--preset G/2', '66 GB of weights');
    // nor does a batch whose activations overflow the wasm memory beside the weight cache
    bad(run('sample', '--model', m, '--count', '200000', '--backend', 'wasm', '--threads', '1'), '--count 200000', 'a batch of 400000 images');
    expect(fs.readdirSync(dir).filter((f) => /^u\.|^samples/.test(f))).toEqual([]);
  });
});

describe('weights with NaN or infinities', () => {
  it('are refused at load naming the tensor and element; --allow-nonfinite reads them', () => {
    const nan = variant(G('tiny.model.safetensors'), 'nan-model.safetensors', (t) => {
      (t.get('blocks.1.moe.gate.weight')!.data as Float32Array)[5] = NaN;
    });
    const where = ['nan-model.safetensors', 'blocks.1.moe.gate.weight', 'element [0, 5] is NaN', '--allow-nonfinite'];
    bad(run('sample', '--model', nan, '--steps', '2', '--out', at('nan.png'), '--backend', 'ref'), ...where);
    bad(run('info', nan), ...where);
    bad(run('convert', nan, at('nan.pt')), ...where);
    bad(run('upcycle', nan, '--experts', '8', at('nan-up.safetensors')), ...where);
    bad(run('conform', G('tiny.forward.safetensors'), '--model', nan, '--out', at('nan-out.safetensors')), ...where);
    const ok = run('info', nan, '--allow-nonfinite');
    expect(ok.code, ok.err).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('nan') && !f.startsWith('nan-model') && !f.startsWith('nan-result'))).toEqual([]);
  });
});

describe('options accepted or ignored that should be errors', () => {
  it('sample, eval, info, convert', () => {
    const m = at('m.safetensors');
    bad(run('sample', '--model', m, '--class', ''), '--class');
    bad(run('sample', '--model', m, '--class', '1,,2'), '--class', "entry ''");
    bad(run('sample', '--model', m, '--seed', '1.5'), '--seed');
    bad(run('sample', '--model', m, '--trajectory', at('t.safetensors')), '--trajectory', '.png');
    bad(run('sample', '--model', m, '--sampler', 'flow', '--eta', '0.5'), '--eta', 'no effect');
    bad(run('sample', '--model', m, '--init-seed', '3'), '--init-seed', 'no effect with --model');
    bad(run('sample', '--model', m, '--cfg', '4x'), '--cfg');
    bad(run('sample', '--model', m, '--backend', 'ref', '--threads', '2'), '--threads', 'no effect with --backend ref');
    bad(run('conform', G('tiny.forward.safetensors'), '--model', m, '--out', at('result.png')), '--out', '.safetensors');
    bad(run('info', m, '--experts', '4'), '--experts');
    bad(run('convert', m, at('c.pt'), '--dtype', 'f16'), '--dtype');
    bad(run('convert', m, at('c.safetensors'), '--nest', 'ema', '--dtype', 'f16'), '--nest');
  });

  it('eval refuses an objective the model was not trained with', () => {
    const flow = path.join(GOLDEN_DIR, '..', 'models', 'mnist-s.safetensors');
    bad(run('eval', '--model', flow, '--objective', 'ddpm', '--samples', '10', '--steps', '1', '--backend', 'ref'), '--objective', 'flow objective');
  });

  it('more threads than cores: capped with a warning, not a silent fall-back to ref', () => {
    const r = run('sample', '--model', at('m.safetensors'), '--count', '1', '--steps', '2', '--threads', String(os.availableParallelism() + 63), '--backend', 'wasm', '--out', at('threads.png'));
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/warning: --threads \d+ is more than the \d+ cores here; using \d+/);
  });
});

describe('newcomer friction', () => {
  it('--version; a usage error is one line pointing at --help; info states the objective, the model\'s share of a checkpoint\'s tensors, MMAC', () => {
    const v = run('--version');
    expect(v.out.trim()).toBe((JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, '..', 'package.json'), 'utf8')) as { version: string }).version);
    bad(run('sample', '--bogus'), "unknown option '--bogus'", 'see dit-moe sample --help');
    const i = run('info', path.join(dir, 'runA', 'checkpoint.safetensors'));
    expect(i.code, i.err).toBe(0);
    expect(i.out).toMatch(/\d+ of its \d+ tensors are the model/);
    expect(i.out).toContain('objective: flow');
    expect(i.out).toMatch(/kMAC in linear layers/);
  });

  it('a training checkpoint is sampled from its EMA by default, and the output says so', () => {
    const out = at('emaRun');
    expect(run(...TRAIN, '--ema', '0.9', '--steps', '1', '--out', out).code).toBe(0);
    const r = run('sample', '--model', path.join(out, 'checkpoint.safetensors'), '--count', '1', '--steps', '1', '--backend', 'ref', '--out', at('ema.png'));
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('using its EMA weights');
  });
});
