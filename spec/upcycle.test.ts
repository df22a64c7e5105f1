/**
 * Upcycling (ref/upcycle.ts, `dit-moe upcycle`), as the official upcycle.py.
 *
 * The source is the golden tiny model cut down to one expert (expert 0 of every block, the
 * router's first row). What upcycling must preserve, exactly: with E identical experts a
 * token's routed output is (Σ_j w_j) · Expert0(h), the sum over its top-k weights w_j. So
 *   (a) uniform router (gate weights zero), no renormalisation: every score is 1/E (exact: 1/8),
 *       Σ w_j = k/E = 1/4, and the upcycled model equals, bit for bit, the one-expert source
 *       whose expert-0 down_proj is scaled by k/E (a power of two: the scaling is exact, and
 *       0 + w·e + w·e = (k/E)·e is exact too);
 *   (b) norm_topk_prob: Σ w_j = 1 up to rounding for any router (the N(0, 0.02) one included),
 *       as the one-expert source's single weight softmax([l]) = 1 is, so the upcycled model
 *       equals the source itself within float32 rounding.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from './runCli.js';
import { DitMoeError } from '../core/errors.js';
import { validateConfig, type DiTConfig } from '../ref/config.js';
import { DiTModel, loadWeights } from '../ref/model.js';
import { refKernels } from '../ref/refKernels.js';
import { upcycle } from '../ref/upcycle.js';
import { parseSafetensors, serializeSafetensors, asFloat32, asNumbers, type StTensor } from '../io/safetensors.js';
import { readPtCheckpoint } from '../io/pt/checkpoint.js';
import { golden, gt, diff, GOLDEN_DIR } from './golden.js';

const TINY = parseSafetensors(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.safetensors'))), 'tiny');
const TINY_CONFIG = validateConfig(JSON.parse(TINY.metadata.config));

/** The golden model with only expert 0 in every block (and the router's first row). */
function oneExpert(normTopk = false): { config: DiTConfig; tensors: Map<string, StTensor> } {
  const tensors = new Map<string, StTensor>();
  for (const [k, t] of TINY.tensors) {
    if (/\.experts\.[1-9]\d*\./.test(k)) continue;
    if (k.endsWith('moe.gate.weight')) tensors.set(k, { dtype: 'F32', shape: [1, t.shape[1]], data: (t.data as Float32Array).slice(0, t.shape[1]) });
    else tensors.set(k, t);
  }
  return { config: validateConfig({ ...TINY_CONFIG, num_experts: 1, num_experts_per_tok: 1, norm_topk_prob: normTopk }), tensors };
}

const build = (config: DiTConfig, tensors: Map<string, StTensor>) => new DiTModel(config, loadWeights(config, tensors, 'test').params, refKernels);
const g = golden('tiny.forward.safetensors');
const x = gt(g, 'in.x');
const forward = (m: DiTModel) => m.forward(asFloat32(x), x.shape, asNumbers(gt(g, 'in.t')), asNumbers(gt(g, 'in.y')));
const bits = (a: Float32Array) => new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

describe('upcycle: what is copied, what is drawn', () => {
  it('1 → 8 experts: every tensor copied, every new expert a copy of expert 0, the routers N(0, 0.02) from the seed', () => {
    const src = oneExpert();
    const r = upcycle(src.tensors, src.config, { experts: 8, seed: 5 });
    expect(r.config).toEqual({ ...src.config, num_experts: 8, num_experts_per_tok: 2 }); // top-2: upcycle.py's default
    // 56 golden tensors − 2 blocks × 3 experts × 3 = 38 in the source; the 2 routers change shape.
    expect(r.report.copied).toHaveLength(36);
    expect(r.report.initialised).toEqual(['blocks.0.moe.gate.weight', 'blocks.1.moe.gate.weight']);
    expect(r.report.fromExpert0).toHaveLength(2 * 7 * 3);
    for (let b = 0; b < 2; b++)
      for (let e = 0; e < 8; e++)
        for (const w of ['gate_proj', 'up_proj', 'down_proj']) {
          const got = r.tensors.get(`blocks.${b}.moe.experts.${e}.${w}.weight`)!;
          expect(bits(got.data as Float32Array), `block ${b} expert ${e} ${w}`).toEqual(bits(TINY.tensors.get(`blocks.${b}.moe.experts.0.${w}.weight`)!.data as Float32Array));
        }
    for (const name of ['pos_embed', 'blocks.1.attn.qkv.weight', 'blocks.0.moe.shared_experts.down_proj.weight', 'final_layer.linear.bias']) expect(r.tensors.get(name)!.data).toBe(TINY.tensors.get(name)!.data);
    // The routers: [8, 64] each, 1024 draws; mean 0 and sd 0.02 within 5 standard errors (0.02/√1024, 0.02/√2048).
    const w = [...asFloat32(r.tensors.get('blocks.0.moe.gate.weight')!), ...asFloat32(r.tensors.get('blocks.1.moe.gate.weight')!)];
    expect(r.tensors.get('blocks.0.moe.gate.weight')!.shape).toEqual([8, 64]);
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const sd = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan((5 * 0.02) / Math.sqrt(w.length));
    expect(Math.abs(sd - 0.02)).toBeLessThan((5 * 0.02) / Math.sqrt(2 * w.length));
    // Deterministic from the seed; another seed, other routers.
    const again = upcycle(src.tensors, src.config, { experts: 8, seed: 5 }).tensors.get('blocks.1.moe.gate.weight')!.data;
    const other = upcycle(src.tensors, src.config, { experts: 8, seed: 6 }).tensors.get('blocks.1.moe.gate.weight')!.data;
    expect(again).toEqual(r.tensors.get('blocks.1.moe.gate.weight')!.data);
    expect(other).not.toEqual(again);
  });

  it('from several experts (as upcycle.py): the existing experts stay, the new ones copy expert 0', () => {
    const r = upcycle(TINY.tensors, TINY_CONFIG, { experts: 6, seed: 0 });
    expect(r.config.num_experts).toBe(6);
    for (let e = 0; e < 6; e++) expect(r.tensors.get(`blocks.1.moe.experts.${e}.up_proj.weight`)!.data, `expert ${e}`).toBe(TINY.tensors.get(`blocks.1.moe.experts.${e < 4 ? e : 0}.up_proj.weight`)!.data);
    expect(r.report.fromExpert0.map(([a, b]) => `${a}←${b}`)).toContain('blocks.0.moe.experts.5.down_proj.weight←blocks.0.moe.experts.0.down_proj.weight');
  });

  it('refuses fewer or as many experts, and a source that does not fit its configuration', () => {
    const src = oneExpert();
    expect(() => upcycle(TINY.tensors, TINY_CONFIG, { experts: 4, seed: 0 })).toThrow(/--experts: 4 is not more than the source's 4 experts/);
    expect(() => upcycle(src.tensors, src.config, { experts: 8, topK: 9, seed: 0 })).toThrow(DitMoeError);
    const broken = new Map(src.tensors);
    broken.delete('blocks.1.moe.experts.0.up_proj.weight');
    expect(() => upcycle(broken, src.config, { experts: 8, seed: 0 }, 'src.pt')).toThrow(/src\.pt: does not fit its configuration: 1 missing \(blocks\.1\.moe\.experts\.0\.up_proj\.weight\)/);
  });
});

describe('upcycle: the output is preserved', () => {
  it('(a) uniform router, no renormalisation: bit for bit the source with expert 0 scaled by k/E', () => {
    const src = oneExpert();
    const r = upcycle(src.tensors, src.config, { experts: 8, seed: 1 });
    const up = build(r.config, r.tensors);
    for (let b = 0; b < 2; b++) up.params.get(`blocks.${b}.moe.gate.weight`).fill(0);
    const scaled = build(src.config, src.tensors);
    const kOverE = r.config.num_experts_per_tok / r.config.num_experts; // 2/8
    for (let b = 0; b < 2; b++) scaled.params.get(`blocks.${b}.moe.experts.0.down_proj.weight`).forEach((v, i, a) => (a[i] = v * kOverE));
    const out = forward(up);
    expect(bits(out)).toEqual(bits(forward(scaled)));
    // The factor is real: the unscaled source differs.
    expect(diff(out, forward(build(src.config, src.tensors))).maxAbs).toBeGreaterThan(1e-3);
  });

  /*
   * Tolerance 1e-6 relative to max(1, max|source|): the only differences are the rounding of
   * w1/(w1+w2) + w2/(w1+w2) = 1 and of w1·e + w2·e (a few float32 ulps, 2⁻²³ ≈ 1.2e-7 each, of
   * the MoE output), carried through two blocks and the final layer. Measured 6.2e-8 (max abs
   * 1.2e-7, one ulp of the output), so 1e-6 leaves 16×; without renormalisation the same
   * comparison is off by more than 1e-2.
   */
  it('(b) norm_topk_prob: the upcycled model (its N(0, 0.02) routers as drawn) equals the one-expert source', () => {
    const src = oneExpert(true);
    const r = upcycle(src.tensors, src.config, { experts: 8, seed: 2 });
    expect(r.config.norm_topk_prob).toBe(true);
    const ref = forward(build(src.config, src.tensors));
    const d = diff(forward(build(r.config, r.tensors)), ref);
    expect(d.rel).toBeLessThan(1e-6);
    const unnormalised = upcycle(oneExpert(false).tensors, oneExpert(false).config, { experts: 8, seed: 2 });
    expect(diff(forward(build(unnormalised.config, unnormalised.tensors)), ref).rel).toBeGreaterThan(1e-2);
  });
});

describe('dit-moe upcycle', () => {
  const cli = runCli;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-upcycle-'));
  const srcFile = path.join(dir, 'one.safetensors');
  const src = oneExpert();
  fs.writeFileSync(srcFile, serializeSafetensors(src.tensors, { config: JSON.stringify(src.config) }));

  it('IN --experts 8 OUT.safetensors: the configuration and tensors of the library call; .pt output readable as a state dict', () => {
    const out = path.join(dir, 'up.safetensors');
    const r = cli('upcycle', srcFile, '--experts', '8', out, '--seed', '3');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/upcycled 1 → 8 experts \(top-2\): 36 tensors copied, 42 new expert tensors copied from experts\.0, 2 routers/);
    const st = parseSafetensors(new Uint8Array(fs.readFileSync(out)), out);
    const lib = upcycle(src.tensors, src.config, { experts: 8, seed: 3 });
    expect(validateConfig(JSON.parse(st.metadata.config))).toEqual(lib.config);
    expect([...st.tensors.keys()]).toEqual([...lib.tensors.keys()]);
    for (const [k, t] of lib.tensors) expect(bits(st.tensors.get(k)!.data as Float32Array), k).toEqual(bits(t.data as Float32Array));
    const pt = path.join(dir, 'up.pt');
    expect(cli('upcycle', srcFile, '--experts', '8', pt, '--seed', '3').code).toBe(0);
    const ck = readPtCheckpoint(new Uint8Array(fs.readFileSync(pt)), pt);
    expect([...ck.stateDict.keys()]).toEqual([...lib.tensors.keys()]);
    expect(bits(ck.stateDict.get('blocks.0.moe.gate.weight')!.data as Float32Array)).toEqual(bits(lib.tensors.get('blocks.0.moe.gate.weight')!.data as Float32Array));
  });

  it('a float16 .pt source keeps float16, the routers included', () => {
    const out = path.join(dir, 'up16.safetensors');
    const r = cli('upcycle', path.join(GOLDEN_DIR, 'tiny.model_fp16_nested.pt'), '--experts', '6', out, '--config', '{"num_heads": 4}');
    expect(r.code, r.err).toBe(0);
    const st = parseSafetensors(new Uint8Array(fs.readFileSync(out)), out);
    expect(new Set([...st.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F16']));
    expect(st.tensors.get('blocks.0.moe.gate.weight')!.shape).toEqual([6, 64]);
  });

  it('bad input: one line, exit 2, nothing written', () => {
    for (const [args, frag] of [
      [['--experts', '1'], '--experts'],
      [['--experts', 'many'], "'many' is not an integer"],
    ] as const) {
      const r = cli('upcycle', srcFile, ...args, path.join(dir, 'bad.safetensors'));
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toContain(frag);
    }
    const r = cli('upcycle', path.join(GOLDEN_DIR, 'tiny.model.safetensors'), '--experts', '3', path.join(dir, 'bad.safetensors'));
    expect(r.code).toBe(2);
    expect(r.err).toContain("3 is not more than the source's 4 experts");
    expect(fs.existsSync(path.join(dir, 'bad.safetensors'))).toBe(false);
  });
});
