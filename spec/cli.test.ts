/**
 * The command line on good and bad input: bad input is one line on stderr naming the
 * file/tensor/field, exit code 2, no stack trace, and no output file left behind.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GOLDEN_DIR, expectClose } from './golden.js';
import { runCli } from './runCli.js';
import { parseSafetensors, serializeSafetensors, f32, i64 } from '../io/safetensors.js';

let dir = '';
const G = (f: string) => path.join(GOLDEN_DIR, f);

const run = runCli;

/** Exit 2, exactly one line on stderr that contains every fragment, no stack trace. */
function expectBadInput(r: ReturnType<typeof run>, ...fragments: string[]) {
  expect(r.code, r.err).toBe(2);
  const lines = r.err.trim().split('\n');
  expect(lines, r.err).toHaveLength(1);
  expect(r.err).not.toMatch(/\bat .*\.js:\d+/);
  for (const f of fragments) expect(r.err).toContain(f);
}

function leftovers(): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith('.') || f.startsWith('out'));
}

/** A copy of a golden case with some tensors replaced. */
function variant(name: string, src: string, change: (t: Map<string, ReturnType<typeof f32>>) => void, meta?: Record<string, string>) {
  const g = parseSafetensors(new Uint8Array(fs.readFileSync(G(src))));
  change(g.tensors as Map<string, ReturnType<typeof f32>>);
  const file = path.join(dir, name);
  fs.writeFileSync(file, serializeSafetensors(g.tensors, { ...g.metadata, ...meta }));
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-cli-'));
});

describe('dit-moe conform and compare', () => {
  it('conform then compare passes on the golden forward and MoE-layer cases', () => {
    for (const [kase, model] of [['tiny.forward.safetensors', 'tiny.model.safetensors'], ['tiny_flash.forward.safetensors', 'tiny_flash.model.safetensors'], ['tiny.moe_layer.safetensors', '']]) {
      const out = path.join(dir, `result-${kase}`);
      const r = run('conform', G(kase), ...(model ? ['--model', G(model)] : []), '--out', out);
      expect(r.code, r.err).toBe(0);
      const c = run('compare', out, G(kase));
      expect(c.code, c.out).toBe(0);
      expect(c.out).toMatch(/\d+ passed, 0 failed/);
      fs.rmSync(out);
    }
  });

  it('compare fails (exit 1) and says which tensor when a result is off', () => {
    const bad = variant('off.safetensors', 'tiny.forward.safetensors', (t) => {
      const e = t.get('out.eps')!;
      (e.data as Float32Array)[5] += 0.01;
    });
    const c = run('compare', bad, G('tiny.forward.safetensors'));
    expect(c.code).toBe(1);
    expect(c.out).toMatch(/FAIL\s+out\.eps/);
    expect(c.out).toMatch(/PASS\s+out\.c /);
  });
});

describe('bad input: one line, exit 2, nothing written', () => {
  it('a truncated model file', () => {
    const bytes = fs.readFileSync(G('tiny.model.safetensors'));
    const file = path.join(dir, 'truncated.safetensors');
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    expectBadInput(run('conform', G('tiny.forward.safetensors'), '--model', file, '--out', path.join(dir, 'out.safetensors')), 'truncated.safetensors', 'past the end');
    expect(leftovers()).toEqual([]);
  });

  it('a corrupt header', () => {
    const bytes = new Uint8Array(fs.readFileSync(G('tiny.model.safetensors')));
    bytes[8] = 0x78; // the header's opening '{' becomes 'x': no longer JSON
    const file = path.join(dir, 'corrupt.safetensors');
    fs.writeFileSync(file, bytes);
    expectBadInput(run('info', file), 'corrupt.safetensors', 'JSON');
  });

  it('a missing tensor and a wrong-shaped tensor in the model', () => {
    const missing = variant('missing.safetensors', 'tiny.model.safetensors', (t) => t.delete('blocks.1.moe.gate.weight'));
    expectBadInput(run('conform', G('tiny.forward.safetensors'), '--model', missing, '--out', path.join(dir, 'out.safetensors')), 'missing.safetensors', 'blocks.1.moe.gate.weight', 'missing');
    const wrong = variant('wrong.safetensors', 'tiny.model.safetensors', (t) => t.set('blocks.0.moe.gate.weight', f32([5, 64], new Float32Array(320))));
    expectBadInput(run('conform', G('tiny.forward.safetensors'), '--model', wrong, '--out', path.join(dir, 'out.safetensors')), 'blocks.0.moe.gate.weight', 'expected [4, 64], got [5, 64]');
    expect(leftovers()).toEqual([]);
  });

  it('an unknown preset', () => {
    expectBadInput(run('info', '--preset', 'Q/9'), "unknown preset 'Q/9'", 'S/2');
  });

  it('a case of an unsupported kind', () => {
    const kase = variant('bogus.safetensors', 'tiny.forward.safetensors', () => {}, { kind: 'bogus' });
    expectBadInput(run('conform', kase, '--model', G('tiny.model.safetensors'), '--out', path.join(dir, 'out.safetensors')), "kind 'bogus' is not supported");
    expect(leftovers()).toEqual([]);
  });

  it('a class label out of range', () => {
    const kase = variant('label.safetensors', 'tiny.forward.safetensors', (t) => t.set('in.y', i64([2], [3, 11])));
    expectBadInput(run('conform', kase, '--model', G('tiny.model.safetensors'), '--out', path.join(dir, 'out.safetensors')), 'y[1]', 'class label 11 is out of range [0, 10]');
    expect(leftovers()).toEqual([]);
  });

  it('a non-finite input', () => {
    const kase = variant('nan.safetensors', 'tiny.forward.safetensors', (t) => {
      (t.get('in.x')!.data as Float32Array)[7] = NaN;
    });
    expectBadInput(run('conform', kase, '--model', G('tiny.model.safetensors'), '--out', path.join(dir, 'out.safetensors')), 'x: element 7 is NaN');
    expect(leftovers()).toEqual([]);
  });

  it('a wrong-shaped input', () => {
    const kase = variant('shape.safetensors', 'tiny.forward.safetensors', (t) => t.set('in.x', f32([2, 3, 8, 8], new Float32Array(384))));
    expectBadInput(run('conform', kase, '--model', G('tiny.model.safetensors'), '--out', path.join(dir, 'out.safetensors')), 'expected shape [N, 4, 8, 8], got [2, 3, 8, 8]');
  });

  it('a file that does not exist', () => {
    expectBadInput(run('info', path.join(dir, 'nope.safetensors')), 'nope.safetensors', 'no such file');
  });
});

describe('dit-moe sample', () => {
  it('writes a PNG grid and a trajectory strip of the expected sizes, and raw tensors', async () => {
    const { PNG } = await import('pngjs');
    const png = path.join(dir, 'grid.png');
    const traj = path.join(dir, 'traj.png');
    const r = run('sample', '--model', G('tiny.model.safetensors'), '--count', '4', '--steps', '5', '--sampler', 'ddim', '--cfg', '1.5', '--out', png, '--trajectory', traj, '--scale', '2', '--backend', 'ref');
    expect(r.code, r.err).toBe(0);
    const grid = PNG.sync.read(fs.readFileSync(png));
    // 4 samples → 2×2 grid of 8×8 images at scale 2 with 2-pixel gaps: 2·16 + 3·2 = 38
    expect([grid.width, grid.height]).toEqual([38, 38]);
    let varSum = 0;
    for (let i = 0; i < grid.data.length; i += 4) varSum += (grid.data[i] - grid.data[4 * 40]) ** 2;
    expect(varSum).toBeGreaterThan(0);
    const strip = PNG.sync.read(fs.readFileSync(traj));
    // 5 steps, a frame every step (round(5/10) = 1 → 5 frames) as columns, 4 rows
    expect([strip.width, strip.height]).toEqual([5 * 16 + 6 * 2, 4 * 16 + 5 * 2]);
    const raw = path.join(dir, 'raw.safetensors');
    expect(run('sample', '--model', G('tiny.model.safetensors'), '--count', '3', '--steps', '4', '--sampler', 'flow', '--class', '7', '--out', raw, '--backend', 'ref').code).toBe(0);
    const st = parseSafetensors(new Uint8Array(fs.readFileSync(raw)));
    expect(st.tensors.get('samples')!.shape).toEqual([3, 4, 8, 8]);
    expect(Array.from(st.tensors.get('labels')!.data as BigInt64Array, Number)).toEqual([7, 7, 7]);
    for (const f of [png, traj, raw]) fs.rmSync(f);
  });

  it('the same seed gives the same samples, another seed others', () => {
    const a = path.join(dir, 'a.safetensors');
    const b = path.join(dir, 'b.safetensors');
    const c = path.join(dir, 'c.safetensors');
    for (const [f, seed] of [[a, '1'], [b, '1'], [c, '2']]) expect(run('sample', '--model', G('tiny.model.safetensors'), '--count', '2', '--steps', '3', '--sampler', 'ddpm', '--seed', seed, '--out', f, '--backend', 'ref').code).toBe(0);
    const read = (f: string) => Array.from(parseSafetensors(new Uint8Array(fs.readFileSync(f))).tensors.get('samples')!.data as Float32Array);
    expect(read(a)).toEqual(read(b));
    expect(read(a)).not.toEqual(read(c));
    for (const f of [a, b, c]) fs.rmSync(f);
  });

  it('bad input: unknown sampler, class out of range, non-finite guidance, bad respacing', () => {
    const m = ['--model', G('tiny.model.safetensors'), '--backend', 'ref', '--out', path.join(dir, 'out.png')];
    expectBadInput(run('sample', ...m, '--sampler', 'euler'), "unknown sampler 'euler'");
    expectBadInput(run('sample', ...m, '--class', '12'), '--class', 'out of range [0, 9]');
    expectBadInput(run('sample', ...m, '--cfg', 'inf'), '--cfg');
    expectBadInput(run('sample', ...m, '--sampler', 'ddim', '--steps', '2000'), '2000');
    expectBadInput(run('sample', ...m, '--threads', '0'), '--threads', "'0' is not a positive integer");
    expectBadInput(run('sample', ...m, '--backend', 'gpu'), '--backend', "unknown backend 'gpu'");
    expect(leftovers()).toEqual([]);
  });

  it('the wasm backend on its default threads (every core) gives the samples of one thread', () => {
    const [a, b] = ['out-threads-default.safetensors', 'out-threads-1.safetensors'].map((f) => path.join(dir, f));
    const common = ['--model', G('tiny.model.safetensors'), '--count', '2', '--steps', '3', '--sampler', 'ddim', '--seed', '3', '--backend', 'wasm'];
    expect(run('sample', ...common, '--out', a).code).toBe(0);
    expect(run('sample', ...common, '--threads', '1', '--out', b).code).toBe(0);
    const read = (f: string) => parseSafetensors(new Uint8Array(fs.readFileSync(f))).tensors.get('samples')!.data as Float32Array;
    expectClose('default threads vs 1 thread', read(a), read(b), 1e-5);
    for (const f of [a, b]) fs.rmSync(f);
  });
});

describe('dit-moe convert --dtype', () => {
  it('stores a safetensors model in float16 that still gives the golden forward within float16 rounding', () => {
    const f16 = path.join(dir, 'model16.safetensors');
    expect(run('convert', G('tiny.model.safetensors'), f16, '--dtype', 'f16').code).toBe(0);
    const st = parseSafetensors(new Uint8Array(fs.readFileSync(f16)));
    expect([...st.tensors.values()].every((t) => t.dtype === 'F16')).toBe(true);
    expect(fs.statSync(f16).size).toBeLessThan(0.6 * fs.statSync(G('tiny.model.safetensors')).size);
    const out = path.join(dir, 'r16.safetensors');
    expect(run('conform', G('tiny.forward.safetensors'), '--model', f16, '--out', out).code).toBe(0);
    // float16 keeps 11 significant bits: weights are off by ≤ 2^-11 relative, the output by a
    // few times that (measured 4.2e-4 for the golden fp16 checkpoint); 4·2^-11 ≈ 2e-3
    const c = run('compare', out, G('tiny.forward.safetensors'), '--rtol', '2e-3');
    expect(c.code, c.out).toBe(0);
    expectBadInput(run('convert', G('tiny.model.safetensors'), f16, '--dtype', 'f8'), '--dtype', 'f8');
    fs.rmSync(f16);
    fs.rmSync(out);
  });
});

describe('dit-moe sample on a freshly initialised preset', () => {
  it('samples without a model file, and needs either --model or --preset', () => {
    const out = path.join(dir, 'fresh.safetensors');
    const r = run('sample', '--preset', 'S/8', '--experts', '2', '--count', '2', '--steps', '2', '--sampler', 'ddim', '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(parseSafetensors(new Uint8Array(fs.readFileSync(out))).tensors.get('samples')!.shape).toEqual([2, 4, 32, 32]);
    expectBadInput(run('sample', '--model', G('tiny.model.safetensors'), '--experts', '2', '--out', out), '--experts');
    fs.rmSync(out);
    expectBadInput(run('sample', '--count', '2', '--out', out), '--model', '--preset');
  });
});
