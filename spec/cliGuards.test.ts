/**
 * The CLI's guards in-process (no spawn): outputs that are inputs, stale temporary files,
 * non-finite weights, bounded sizes (configurations, pickles), the training bar's first frame,
 * the checkpoint default. Each fails on the defect issue 14 found.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { DitMoeError } from '../core/errors.js';
import { validateConfig, presetConfig, CONFIG_LIMITS } from '../ref/config.js';
import { unpickle, PICKLE_LIMITS } from '../io/pt/unpickle.js';
import { f32, i64 } from '../io/safetensors.js';
import { refuseOverwritingInputs, cleanStaleTemps, checkOutputFolder } from '../node/outputs.js';
import { checkFiniteTensors } from '../cli/finite.js';
import { checkModelFits, checkPixels } from '../cli/limits.js';
import { refKernels } from '../ref/refKernels.js';
import { progressBar } from '../cli/progress.js';
import { register as registerTrain } from '../cli/commands/train.js';
import { parseLabels } from '../cli/commands/sample.js';
import { writeFileAtomic, readBytes } from '../node/files.js';

let dir = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-guards-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('an output that is an input is refused', () => {
  it('the same file by another spelling: ../, a symlink, a hard link; and two outputs that are one file', () => {
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub, { recursive: true });
    const input = path.join(dir, 'm.safetensors');
    fs.writeFileSync(input, 'model');
    fs.symlinkSync(input, path.join(dir, 'link.safetensors'));
    fs.linkSync(input, path.join(dir, 'hard.safetensors'));
    for (const out of [input, path.join(sub, '..', 'm.safetensors'), path.join(dir, 'link.safetensors'), path.join(dir, 'hard.safetensors')]) {
      expect(() => refuseOverwritingInputs([['--out', out]], [['--model', input]]), out).toThrow(/--out .*: is the input --model .*m\.safetensors/);
    }
    // a new file, and options not given, are fine
    refuseOverwritingInputs([['--out', path.join(dir, 'new.png')], ['--trajectory', undefined]], [['--model', input], ['--config', undefined]]);
    expect(() => refuseOverwritingInputs([['--out', path.join(dir, 'x.png')], ['--trajectory', path.join(sub, '..', 'x.png')]], [])).toThrow(/--trajectory .*also the output --out/);
    expect(fs.readFileSync(input, 'utf8')).toBe('model');
  });

  it('a folder output that exists as a file (or under a file) is refused before mkdir fails', () => {
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, '');
    expect(() => checkOutputFolder('--out', file)).toThrow(/exists and is not a folder/);
    expect(() => checkOutputFolder('--out', path.join(file, 'run'))).toThrow(/afile exists and is not a folder/);
    checkOutputFolder('--out', path.join(dir, 'fresh', 'run'));
  });
});

describe('temporary files of interrupted writes', () => {
  it('are removed when their process has ended; a live process\'s and other files stay', () => {
    const run = path.join(dir, 'run');
    fs.mkdirSync(run, { recursive: true });
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(child.stdout); // ended: spawnSync waited for it
    const stale = `.checkpoint.safetensors.${deadPid}.1700000000000.tmp`;
    const live = `.checkpoint.safetensors.${process.pid}.1700000000000.tmp`;
    for (const f of [stale, live, '.hidden', 'notes.tmp']) fs.writeFileSync(path.join(run, f), 'x');
    expect(cleanStaleTemps(run)).toEqual([stale]);
    expect(fs.readdirSync(run).sort()).toEqual(['.hidden', live, 'notes.tmp'].sort());
  });

  it('writeFileAtomic cleans the folder it writes into', () => {
    const run = path.join(dir, 'run2');
    fs.mkdirSync(run, { recursive: true });
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(run, `.model.safetensors.${Number(child.stdout)}.1.tmp`), 'x');
    writeFileAtomic(path.join(run, 'loss.png'), 'png');
    expect(fs.readdirSync(run)).toEqual(['loss.png']);
  });
});

describe('weights must be finite', () => {
  it('names the tensor and the first bad element', () => {
    const ok = f32([2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
    const bad = f32([2, 3], Float32Array.of(1, 2, 3, 4, NaN, Infinity));
    checkFiniteTensors(new Map([['a', ok], ['idx', i64([2], [1, 2])]]), 'm.safetensors');
    expect(() => checkFiniteTensors(new Map([['a', ok], ['blocks.0.w', bad]]), 'm.safetensors')).toThrow('m.safetensors: tensor blocks.0.w [2, 3]: element [1, 1] is NaN');
  });
});

describe('sizes bounded before allocating', () => {
  it('a configuration beyond the stated limits is an error naming the field, before any table is built', () => {
    expect(() => presetConfig('S/2', { num_experts: 1e9 })).toThrow(/num_experts = 1000000000, expected at most 1024/);
    expect(() => validateConfig({ depth: 1e9 }, 'c.json')).toThrow(/c\.json: depth = 1000000000/);
    expect(() => validateConfig({ mlp_ratio: 1e9 })).toThrow(/mlp_ratio/);
    // the paper's largest fits
    expect(presetConfig('G/2', { num_experts: 16 }).depth).toBeLessThanOrEqual(CONFIG_LIMITS.depth);
  });

  it('a batch or a picture beyond memory is refused; the released sizes are not', () => {
    const s2 = presetConfig('S/2');
    const wasm = { ...refKernels, name: 'wasm' };
    checkModelFits(s2, refKernels, 16, '--count 16');
    expect(() => checkModelFits(s2, refKernels, 1e9, '--count 1000000000')).toThrow(/--count 1000000000: .* needs about/);
    // the wasm memory holds a bounded weight cache: a fresh B/2 (3.2 GB of float32 weights) runs there
    checkModelFits(presetConfig('B/2'), wasm, 2, '--preset B/2');
    // a G/2-16E2A file (weights placed by the memory plan, streamed if need be) with one guidance pair
    const g2 = presetConfig('G/2', { num_experts: 16 });
    checkModelFits(g2, wasm, 2, '--count 1', 0);
    // but not its 66 GB of float32 weights held whole, nor a batch whose activations overflow the wasm memory
    expect(() => checkModelFits(g2, refKernels, 2, '--preset G/2')).toThrow(/--preset G\/2: the model \(66 GB of weights\)/);
    expect(() => checkModelFits(g2, wasm, 64, '--count 32', 0)).toThrow(/--count 32: a batch of 64 images needs about .* more than the 1\.07 GB/);
    checkPixels(1000, 1000, '--scale 4');
    expect(() => checkPixels(2_800_004, 2_800_004, '--scale 100000')).toThrow(/--scale 100000: .*megapixels/);
  });

  it('a class list with an empty or garbled entry is an error, not class 0', () => {
    for (const bad of ['', '1,,2', 'x', '1.5', '-1']) expect(() => parseLabels(bad, 4, 10), bad).toThrow(DitMoeError);
    expect(Array.from(parseLabels('1, 2', 4, 10))).toEqual([1, 2, 1, 2]);
  });

  it('a device is never read (info /dev/zero read forever)', () => {
    if (!fs.existsSync('/dev/zero')) return;
    expect(() => readBytes('/dev/zero')).toThrow(/\/dev\/zero: is not a regular file/);
  });
});

describe('pickles: no call-stack overflow, memory bounded by what a checkpoint needs', () => {
  const pickle = (...parts: (number[] | Uint8Array)[]) => Uint8Array.from(parts.flatMap((p) => Array.from(p)));

  it('a set of 300k items (ADDITEMS) is read without overflowing the call stack', () => {
    const n = 300_000;
    const items = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) items.set([0x4b, i & 0xff], 2 * i); // BININT1
    const v = unpickle(pickle([0x80, 4, 0x8f, 0x28], items, [0x90, 0x2e])) as { items: unknown[] };
    expect(v.items).toHaveLength(n);
  });

  it('millions of empty dicts are refused at the container limit (16 MB of EMPTY_DICT took 3.6 GB)', () => {
    const n = PICKLE_LIMITS.maxObjects + 10;
    const body = new Uint8Array(n).fill(0x7d); // EMPTY_DICT
    expect(() => unpickle(pickle([0x80, 2], body, [0x2e]), { where: 'big.pt' })).toThrow(/big\.pt: builds more than \d+ containers/);
  });
});

describe('training: the bar and the checkpoint default', () => {
  it('the first frame on a terminal shows the step and loss, not the template {step} {loss}', () => {
    const writes: string[] = [];
    const stream = process.stderr as unknown as { isTTY?: boolean; write: (s: string) => boolean; columns?: number };
    const saved = { isTTY: stream.isTTY, write: stream.write, columns: stream.columns };
    stream.isTTY = true;
    stream.columns = 200;
    stream.write = (s: string) => (writes.push(String(s)), true);
    try {
      const bar = progressBar(10, 'train', ' | step {step} | loss {loss}');
      bar.tick({ step: 1, loss: '0.5000' });
      bar.stop();
    } finally {
      Object.assign(stream, saved);
    }
    const text = writes.join('');
    expect(text).toContain('step 1 | loss 0.5000');
    expect(text).not.toContain('{step}');
  });

  it('--sample-every 0 does not switch off checkpoints: --checkpoint-every has its own default', () => {
    const program = new Command();
    registerTrain(program);
    const train = program.commands.find((c) => c.name() === 'train')!;
    const opt = train.options.find((o) => o.long === '--checkpoint-every')!;
    expect(opt.defaultValue).toBe(200);
  });
});
