/**
 * Configuration inference from tensor names and shapes (ref/inferConfig.ts), its use by
 * `--model` (cli/loadModel.ts), and the golden `.pt` files through it.
 *
 * Independent references: the golden state dicts and their `__metadata__.config` (written by
 * the official PyTorch code), the preset table of the official `DiT_models`, and the golden
 * forward outputs. Synthesised state dicts are shapes only (paramSpecs of a configuration,
 * no weights), so the XL and G presets cost nothing.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from './runCli.js';
import fc from 'fast-check';
import { DitMoeError } from '../core/errors.js';
import { PRESETS, presetConfig, validateConfig, type DiTConfig } from '../ref/config.js';
import { paramSpecs } from '../ref/params.js';
import { inferConfig, checkConfigFits, type ShapeMap } from '../ref/inferConfig.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { refKernels } from '../ref/refKernels.js';
import { parseSafetensors, serializeSafetensors, asFloat32, asNumbers, floatToHalf, halfToFloat, type StTensor } from '../io/safetensors.js';
import { loadModelFile } from '../cli/loadModel.js';
import { golden, gt, diff, expectClose, GOLDEN_DIR } from './golden.js';
import { expectOurError } from './errors.js';

const G = (f: string) => path.join(GOLDEN_DIR, f);
const readSt = (f: string) => parseSafetensors(new Uint8Array(fs.readFileSync(G(f))), f);
const TINY = readSt('tiny.model.safetensors');
const FLASH = readSt('tiny_flash.model.safetensors');
const goldenConfig = (st: { metadata: Record<string, string> }) => validateConfig(JSON.parse(st.metadata.config));

/** The names and shapes of a configuration's state dict, without weights. */
const shapesOf = (c: DiTConfig): ShapeMap => new Map(paramSpecs(c).map((s) => [s.name, { shape: s.shape }]));


describe('inference recovers the golden configurations', () => {
  it('flash layout: everything from the shapes (heads from q_norm), the open fields at the official defaults the golden model uses', () => {
    const r = inferConfig(FLASH.tensors, { where: 'tiny_flash' });
    expect(r.config).toEqual(goldenConfig(FLASH));
    expect(r.layout).toBe('flash');
    expect(r.sources.num_heads).toBe('inferred');
    for (const k of ['input_size', 'patch_size', 'in_channels', 'hidden_size', 'depth', 'mlp_ratio', 'num_classes', 'num_experts', 'learn_sigma', 'n_shared_experts', 'frequency_embedding_size', 'use_flash_attn'] as const) expect(r.sources[k], k).toBe('inferred');
    for (const k of ['num_experts_per_tok', 'class_dropout_prob', 'aux_loss_alpha', 'norm_topk_prob', 'seq_aux'] as const) expect(r.sources[k], k).toBe('default');
    expect(r.preset).toBeUndefined();
  });

  it('timm layout: the heads are not in the file; given, the rest is inferred exactly', () => {
    expectOurError(() => inferConfig(TINY.tensors, { where: 'tiny' }), 'tiny', 'number of attention heads', 'num_heads');
    const r = inferConfig(TINY.tensors, { given: { num_heads: 4 } });
    expect(r.config).toEqual(goldenConfig(TINY));
    expect(r.sources.num_heads).toBe('given');
    expect(r.layout).toBe('timm');
    const u = inferConfig(TINY.tensors, { heads: 'unknown' });
    expect(u.sources.num_heads).toBe('unknown');
    expect({ ...u.config, num_heads: 4 }).toEqual(goldenConfig(TINY));
  });

  it('the open fields follow what is given: top-k, and no null row when class_dropout_prob = 0', () => {
    const r = inferConfig(FLASH.tensors, { given: { num_experts_per_tok: 3, class_dropout_prob: 0, hidden_size: 999 } });
    expect(r.config.num_experts_per_tok).toBe(3);
    expect(r.config.num_classes).toBe(11); // 11 rows, none of them the null class
    expect(r.config.hidden_size).toBe(64); // a field the shapes show ignores the given value
  });
});

describe('inference inverts the shape table', () => {
  it('every preset (timm and flash), heads from the preset table, with various experts, shared experts, sizes', () => {
    let n = 0;
    for (const name of Object.keys(PRESETS)) {
      for (const over of [{}, { num_experts: 16, n_shared_experts: 0 }, { learn_sigma: false, input_size: 64, num_classes: 10, mlp_ratio: 2 }, { num_experts: 2, use_flash_attn: !/^(XL|G)/.test(name) }] as Partial<DiTConfig>[]) {
        const c = presetConfig(name, over);
        const r = inferConfig(shapesOf(c), { where: name });
        expect(r.config, `${name} ${JSON.stringify(over)}`).toEqual(c);
        expect(r.preset).toBe(name);
        expect(r.sources.num_heads).toBe(c.use_flash_attn ? 'inferred' : 'preset');
        n++;
      }
    }
    expect(n).toBe(4 * 13);
  });

  it('the official checkpoints: S/2 and B/2 8E2A (timm), XL/2 8E2A and G/2 16E2A (flash, 16 heads of 72 and 88)', () => {
    for (const [name, E] of [['S/2', 8], ['B/2', 8], ['XL/2', 8], ['G/2', 16]] as const) {
      const c = presetConfig(name, { num_experts: E });
      expect(inferConfig(shapesOf(c)).config).toEqual(c);
    }
    expect(shapesOf(presetConfig('G/2')).get('blocks.0.attn.q_norm.weight')!.shape).toEqual([88]);
  });

  it('random configurations (fast-check, seeded): the shape-determined fields come back, the open ones as given', () => {
    const cfg = fc
      .record({
        p: fc.integer({ min: 1, max: 4 }),
        grid: fc.integer({ min: 1, max: 6 }),
        C: fc.integer({ min: 1, max: 5 }),
        headDim: fc.integer({ min: 1, max: 6 }),
        heads: fc.integer({ min: 1, max: 6 }),
        depth: fc.integer({ min: 1, max: 5 }),
        E: fc.integer({ min: 1, max: 9 }),
        k: fc.integer({ min: 1, max: 9 }),
        F: fc.integer({ min: 1, max: 40 }),
        shared: fc.integer({ min: 0, max: 3 }),
        classes: fc.integer({ min: 1, max: 20 }),
        drop: fc.constantFrom(0, 0.1, 0.25),
        sigma: fc.boolean(),
        flash: fc.boolean(),
        freq: fc.integer({ min: 1, max: 20 }),
      })
      .filter((r) => Number.isInteger((r.F / (4 * r.headDim * r.heads)) * 4 * r.headDim * r.heads)) // validateConfig wants mlp_ratio · D to come out an integer
      .map((r): DiTConfig => {
        const D = 4 * r.headDim * r.heads; // the 2-D position embedding needs D % 4 = 0
        return validateConfig({ input_size: r.p * r.grid, patch_size: r.p, in_channels: r.C, hidden_size: D, depth: r.depth, num_heads: r.heads, mlp_ratio: r.F / D, num_classes: r.classes, num_experts: r.E, num_experts_per_tok: Math.min(r.k, r.E), learn_sigma: r.sigma, class_dropout_prob: r.drop, n_shared_experts: r.shared, aux_loss_alpha: 0.01, norm_topk_prob: false, seq_aux: false, frequency_embedding_size: 2 * r.freq, use_flash_attn: r.flash });
      });
    fc.assert(
      fc.property(cfg, (c) => {
        const given = { num_experts_per_tok: c.num_experts_per_tok, class_dropout_prob: c.class_dropout_prob, ...(c.use_flash_attn ? {} : { num_heads: c.num_heads }) };
        const r = inferConfig(shapesOf(c), { given });
        expect(r.config).toEqual(c);
        if (c.use_flash_attn) expect(r.sources.num_heads).toBe('inferred');
      }),
      { seed: 20261127, numRuns: 300 },
    );
  });
});

describe('what inference refuses, naming the tensor', () => {
  const base = () => new Map<string, { shape: readonly number[] }>(FLASH.tensors);

  it('no pos_embed: the input size must be given', () => {
    const s = base();
    s.delete('pos_embed');
    expectOurError(() => inferConfig(s, { where: 'f.pt' }), 'f.pt', 'pos_embed', 'input_size');
    expect(inferConfig(s, { given: { input_size: 8 } }).config).toEqual(goldenConfig(FLASH));
    expect(inferConfig(s, { given: { input_size: 8 } }).sources.input_size).toBe('given');
  });

  it('not a DiT-MoE state dict, and a DataParallel one', () => {
    expectOurError(() => inferConfig(new Map([['fc.weight', { shape: [3, 4] }]])), "no tensor 'x_embedder.proj.weight'", 'fc.weight');
    const wrapped = new Map([...FLASH.tensors].map(([k, v]) => [`module.${k}`, v]));
    expectOurError(() => inferConfig(wrapped), "'module.'");
  });

  it('blocks that disagree with block 0, and a final layer that fits neither C nor 2C channels', () => {
    const s = base();
    s.delete('blocks.1.moe.experts.3.up_proj.weight');
    expectOurError(() => inferConfig(s), '1 missing (blocks.1.moe.experts.3.up_proj.weight)');
    const t = base();
    t.set('blocks.1.moe.experts.4.up_proj.weight', { shape: [256, 64] });
    expectOurError(() => inferConfig(t), 'unexpected (blocks.1.moe.experts.4.up_proj.weight)');
    const u = base();
    u.set('final_layer.linear.weight', { shape: [20, 64] });
    expectOurError(() => inferConfig(u), 'final_layer.linear.weight has 20 rows', '16', '32');
    const v = base();
    v.set('x_embedder.proj.weight', { shape: [64, 4, 2] });
    expectOurError(() => inferConfig(v), 'x_embedder.proj.weight', 'has shape [64, 4, 2]');
  });
});

describe('a stated preset or config that disagrees with the file is reported tensor by tensor', () => {
  it('names the fields that differ and the tensors at fault', () => {
    const msg = expectOurError(() => checkConfigFits(presetConfig('S/2'), TINY.tensors, 'tiny.model.pt', '--preset S/2'), 'tiny.model.pt: does not fit --preset S/2', 'hidden_size: 384 stated, 64 in the file', 'depth: 12 stated, 2 in the file', 'missing (blocks.0.moe.experts.4.gate_proj.weight', 'x_embedder.proj.weight: expected [384, 4, 2, 2], got [64, 4, 2, 2]').message;
    expect(msg).toContain('wrong-shaped');
    expectOurError(() => checkConfigFits({ ...goldenConfig(TINY), use_flash_attn: true }, TINY.tensors, 'tiny', 'the config'), 'use_flash_attn: true stated, false in the file', 'missing (blocks.0.attn.Wqkv.weight', 'unexpected (blocks.0.attn.qkv.weight');
    expectOurError(() => checkConfigFits({ ...goldenConfig(TINY), n_shared_experts: 0 }, TINY.tensors, 'tiny', 'the config'), '6 unexpected (blocks.0.moe.shared_experts.gate_proj.weight');
    expect(() => checkConfigFits(goldenConfig(TINY), TINY.tensors, 'tiny', 'the config')).not.toThrow();
  });

  it('through --model: a stated preset, and a --config field, against the golden .pt', async () => {
    await expect(loadModelFile(G('tiny.model.pt'), refKernels, { preset: 'B/2' })).rejects.toThrow(/does not fit --preset B\/2 .*x_embedder\.proj\.weight: expected \[768, 4, 2, 2\], got \[64, 4, 2, 2\]/);
    await expect(loadModelFile(G('tiny.model.pt'), refKernels, { config: '{"num_heads": 4, "num_experts": 8}' })).rejects.toThrow(/num_experts: 8 stated, 4 in the file.*blocks\.0\.moe\.gate\.weight: expected \[8, 64\], got \[4, 64\]/);
    await expect(loadModelFile(G('tiny.model.safetensors'), refKernels, { config: '{"learn_sigma": false}' })).rejects.toThrow(/learn_sigma: false stated, true in the file.*final_layer\.linear\.weight: expected \[16, 64\], got \[32, 64\]/);
    await expect(loadModelFile(G('tiny.model.pt'), refKernels, { config: '{"num_heads": 4, "bogus": 1}' })).rejects.toThrow(/unknown field 'bogus'/);
    await expect(loadModelFile(G('tiny.model.pt'), refKernels, { config: '{"num_heads": 4}', weights: 'best' })).rejects.toThrow(/--weights: must be model or ema/);
  });
});

describe('the golden .pt checkpoints give the golden forward through --model with inference', () => {
  const g = golden('tiny.forward.safetensors');
  const x = gt(g, 'in.x');
  const run = (m: { forward: (x: Float32Array, s: readonly number[], t: ArrayLike<number>, y: ArrayLike<number>) => Float32Array }) => m.forward(asFloat32(x), x.shape, asNumbers(gt(g, 'in.t')), asNumbers(gt(g, 'in.y')));
  const reference = run(loadModelFromSafetensors(new Uint8Array(fs.readFileSync(G('tiny.model.safetensors'))), 'tiny', refKernels));
  const notes: string[] = [];
  const opts = { config: '{"num_heads": 4}', note: (l: string) => notes.push(l) };

  it('tiny.model.pt (float32): the inferred configuration is the golden one and the output is bit-identical to the safetensors model', async () => {
    notes.length = 0;
    const m = await loadModelFile(G('tiny.model.pt'), refKernels, opts);
    expect(m.config).toEqual(goldenConfig(TINY));
    expect(notes).toHaveLength(1); // top-k and the null row were defaulted: one line says so
    expect(notes[0]).toMatch(/num_experts_per_tok = 2.*class_dropout_prob = 0\.1/);
    const out = run(m);
    expect(new Uint32Array(out.buffer)).toEqual(new Uint32Array(reference.buffer));
    expectClose('out.eps', out, gt(g, 'out.eps'), 2e-4); // and so within the golden forward test's tolerance
  });

  it("with the case file's configuration filling the open fields (as conform does), no note", async () => {
    notes.length = 0;
    const m = await loadModelFile(G('tiny.model.pt'), refKernels, { fallback: JSON.parse(g.metadata.config), note: (l) => notes.push(l) });
    expect(m.config).toEqual(goldenConfig(TINY));
    expect(notes).toEqual([]);
  });

  /*
   * float16: the file holds the float16 rounding of every weight (relative error ≤ u = 2⁻¹¹ ≈
   * 4.9e-4 each). Two checks: (1) exactly the output of the float32 model whose weights were
   * rounded to float16 here (so every difference from the golden output is the rounding's);
   * (2) against the golden output within 4u ≈ 2.0e-3 relative to max(1, max|golden|).
   * Measured: 4.2e-4 (≈ 0.86u: each layer's output error stays about u because the rounding errors
   * of a dot product's terms partly cancel, and two residual blocks do not amplify it much), so
   * 4u leaves a margin of 4.6×; a model with two experts of block 0 swapped is off by far more.
   */
  it('tiny.model_fp16_nested.pt (float16 under `model`): exactly the float32 model with rounded weights, and within 4u of the golden output', async () => {
    const m16 = await loadModelFile(G('tiny.model_fp16_nested.pt'), refKernels, { ...opts, weights: 'model' });
    expect(m16.config).toEqual(goldenConfig(TINY));
    const out16 = run(m16);
    const rounded = new Map<string, StTensor>([...TINY.tensors].map(([k, t]) => [k, { dtype: 'F32', shape: t.shape, data: (t.data as Float32Array).map((v) => halfToFloat(floatToHalf(v))) }]));
    const mRounded = await loadModelFile(G('tiny.model.safetensors'), refKernels); // the golden config
    for (const [k, t] of rounded) mRounded.params.get(k).set(t.data as Float32Array);
    expect(new Uint32Array(out16.buffer)).toEqual(new Uint32Array(run(mRounded).buffer));

    const U = 2 ** -11;
    const d = expectClose('out.eps (float16 weights)', out16, gt(g, 'out.eps'), 4 * U);
    expect(d.rel).toBeGreaterThan(U / 100); // the weights really were rounded
    // The tolerance tells a wrong model apart: swap experts 0 and 1 of block 0.
    const swapped = await loadModelFile(G('tiny.model_fp16_nested.pt'), refKernels, opts);
    for (const w of ['gate_proj', 'up_proj', 'down_proj']) {
      const a = swapped.params.get(`blocks.0.moe.experts.0.${w}.weight`);
      const b = swapped.params.get(`blocks.0.moe.experts.1.${w}.weight`);
      const tmp = a.slice();
      a.set(b);
      b.set(tmp);
    }
    expect(diff(run(swapped), asFloat32(gt(g, 'out.eps'))).rel).toBeGreaterThan(10 * 4 * U);
  });
});

describe('--weights model|ema', () => {
  it('a safetensors training checkpoint (plain names, ema.*, adam_m.*): ema.* by default (as the official find_model), the plain names when asked', async () => {
    const entries: [string, StTensor][] = [];
    for (const [k, t] of TINY.tensors) {
      entries.push([k, t]);
      entries.push([`ema.${k}`, { dtype: 'F32', shape: t.shape, data: (t.data as Float32Array).map((v) => v / 2) }]);
      entries.push([`adam_m.${k}`, { dtype: 'F32', shape: t.shape, data: new Float32Array(t.data.length) }]);
    }
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-weights-')), 'ck.safetensors');
    fs.writeFileSync(file, serializeSafetensors(entries, { config: TINY.metadata.config, kind: 'checkpoint' }));
    const name = 'blocks.1.moe.experts.2.up_proj.weight';
    const want = TINY.tensors.get(name)!.data as Float32Array;
    const notes: string[] = [];
    expect((await loadModelFile(file, refKernels, { note: (l) => notes.push(l) })).params.get(name)).toEqual(want.map((v) => v / 2));
    expect(notes.join('\n')).toContain('using its EMA weights');
    expect((await loadModelFile(file, refKernels, { weights: 'model' })).params.get(name)).toEqual(want);
    expect((await loadModelFile(file, refKernels, { weights: 'ema' })).params.get(name)).toEqual(want.map((v) => v / 2));
    await expect(loadModelFile(G('tiny.model.safetensors'), refKernels, { weights: 'ema' })).rejects.toThrow(/has no EMA weights/);
    await expect(loadModelFile(G('tiny.model_fp16_nested.pt'), refKernels, { config: '{"num_heads": 4}', weights: 'ema' })).rejects.toThrow(/has no 'ema' weights \(its entries: model, step\)/);
  });
});

describe('dit-moe info / conform / convert on a .pt without a configuration', () => {
  const cli = runCli;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-infer-'));
  // The parameter count, independently: the golden state dict's sizes.
  const total = [...TINY.tensors.values()].reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);

  it('info golden/tiny.model.pt: inferred configuration, heads unknown, the parameter count of the golden state dict', () => {
    const r = cli('info', G('tiny.model.pt'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('inferred from the tensor shapes');
    expect(r.out).toContain('"num_heads":null');
    expect(r.out).toContain(`(${total})`);
    const cfg = JSON.parse(/config: (\{.*\})/.exec(r.out)![1]);
    expect({ ...cfg, num_heads: 4 }).toEqual(goldenConfig(TINY));
    const r16 = cli('info', G('tiny.model_fp16_nested.pt'), '--weights', 'model');
    expect(r16.code, r16.err).toBe(0);
    expect(r16.out).toMatch(/F16 ×56/);
    expect(r16.out).toMatch(/training step: 3/);
  });

  it('info with a preset that does not fit: one line, exit 2, naming the tensors', () => {
    const r = cli('info', G('tiny.model.pt'), '--preset', 'S/2');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain('blocks.0.moe.experts.4.gate_proj.weight');
    expect(r.err).toContain('hidden_size: 384 stated, 64 in the file');
  });

  it('conform the golden forward case with the .pt model passes compare (the case supplies the heads)', () => {
    const out = path.join(dir, 'r.safetensors');
    const r = cli('conform', G('tiny.forward.safetensors'), '--model', G('tiny.model.pt'), '--out', out, '--backend', 'ref');
    expect(r.code, r.err).toBe(0);
    const c = cli('compare', out, G('tiny.forward.safetensors'));
    expect(c.code, c.out).toBe(0);
  });

  it('convert .pt → safetensors writes the inferred configuration; without the heads it converts and says why there is none', () => {
    const a = path.join(dir, 'a.safetensors');
    const r = cli('convert', G('tiny.model.pt'), a, '--config', '{"num_heads": 4}');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/num_experts_per_tok = 2/);
    expect(validateConfig(JSON.parse(parseSafetensors(new Uint8Array(fs.readFileSync(a))).metadata.config))).toEqual(goldenConfig(TINY));
    const b = path.join(dir, 'b.safetensors');
    const r2 = cli('convert', G('tiny.model.pt'), b);
    expect(r2.code, r2.err).toBe(0);
    expect(r2.err).toMatch(/no configuration written .*num_heads/);
    expect(parseSafetensors(new Uint8Array(fs.readFileSync(b))).metadata.config).toBeUndefined();
    const r3 = cli('convert', G('tiny.model.pt'), path.join(dir, 'c.safetensors'), '--preset', 'S/2');
    expect(r3.code).toBe(2);
    expect(r3.err).toContain('does not fit --preset S/2');
    expect(fs.existsSync(path.join(dir, 'c.safetensors'))).toBe(false);
  });
});
