/**
 * Loading the Stable Diffusion VAE and TAESD (io/vae/): the real sd-vae-ft-mse layout
 * (golden/sd_vae_keys.json: every name and shape in the diffusers, legacy and LDM namings)
 * renamed, its configuration inferred and checked without the 335 MB file; one whole float16
 * file of that layout (zeros, LDM names under first_stage_model. next to a UNet tensor) read
 * and loaded without a forward; the reports of missing, unexpected and wrong-shaped tensors;
 * TAESD in diffusers' AutoencoderTiny names.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GOLDEN_DIR, golden, gt, expectClose } from './golden.js';
import { asFloat32, parseSafetensors, type StTensor } from '../io/safetensors.js';
import { toDiffusersNames } from '../io/vae/names.js';
import { inferVaeConfig, loadVaeFromTensors, vaeMismatch } from '../io/vae/load.js';
import { loadTaesdHalf, taesdHalves } from '../io/vae/taesd.js';
import { vaeParamSpecs } from '../ref/vae/params.js';
import { vaeConfigFrom } from '../ref/vae/config.js';
import { refKernels } from '../ref/refKernels.js';
import { DitMoeError } from '../core/errors.js';

const keys = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'sd_vae_keys.json'), 'utf8')) as { config: Record<string, unknown>; diffusers: Record<string, number[]>; legacy: Record<string, number[]>; ldm: Record<string, number[]> };
const EMPTY = new Float32Array(0);

/** A state dict of shapes only (the renaming and the checks read no values). */
function shapesOnly(names: Record<string, number[]>, prefix = ''): Map<string, StTensor> {
  return new Map(Object.entries(names).map(([k, shape]) => [prefix + k, { dtype: 'F16', shape, data: EMPTY } as StTensor]));
}

function shapeTable(m: ReadonlyMap<string, StTensor>): Record<string, number[]> {
  return Object.fromEntries([...m].map(([k, v]) => [k, v.shape]).sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe('the real sd-vae-ft-mse layout (sd_vae_keys.json)', () => {
  const want = shapeTable(shapesOnly(keys.diffusers));

  it('our parameter list is the diffusers list, name for name and shape for shape (83,653,863 parameters)', () => {
    const specs = vaeParamSpecs(vaeConfigFrom(keys.config, 'sd_vae_keys.json'));
    expect(Object.fromEntries(specs.map((s) => [s.name, s.shape]).sort(([a], [b]) => (a < b ? -1 : 1)))).toEqual(want);
    expect(specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0)).toBe(83_653_863);
  });

  for (const [naming, prefix] of [['diffusers', ''], ['legacy', ''], ['ldm', ''], ['ldm', 'first_stage_model.'], ['ldm', 'vae.'], ['legacy', 'vae.']] as const) {
    it(`${naming} names${prefix ? ` under ${prefix}` : ''}: renamed to diffusers', configuration inferred, nothing missing or extra`, () => {
      const all = shapesOnly(keys[naming], prefix);
      if (prefix) all.set('model.diffusion_model.input_blocks.0.0.weight', { dtype: 'F16', shape: [320, 4, 3, 3], data: EMPTY }); // the rest of an SD checkpoint
      const r = toDiffusersNames(all);
      expect(r.naming).toBe(naming);
      expect(r.prefix).toBe(prefix);
      expect(shapeTable(r.tensors)).toEqual(want);
      const c = inferVaeConfig(r.tensors, 'sd');
      expect(c).toEqual(vaeConfigFrom(keys.config, 'sd_vae_keys.json'));
      expect(vaeMismatch(c, r.tensors)).toEqual({ missing: [], unexpected: [], wrongShape: [] });
    });
  }

  it('a whole float16 file of the layout (LDM names, first_stage_model., zeros) reads and loads', () => {
    // the header by hand and zero bytes for the data: 167 MB, built in a moment
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let off = 0;
    const entries: [string, number[]][] = [...Object.entries(keys.ldm).map(([k, s]) => [`first_stage_model.${k}`, s] as [string, number[]]), ['model.diffusion_model.out.2.bias', [4]]];
    for (const [k, shape] of entries) {
      const n = shape.reduce((a, b) => a * b, 1) * 2;
      header[k] = { dtype: 'F16', shape, data_offsets: [off, off + n] };
      off += n;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const bytes = new Uint8Array(8 + json.length + off);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(new TextEncoder().encode(json), 8);
    const st = parseSafetensors(bytes, 'sd.ckpt.safetensors');
    const notes: string[] = [];
    const { vae, naming, origin, config } = loadVaeFromTensors(st.tensors, st.metadata, 'sd.ckpt.safetensors', refKernels, { note: (l) => notes.push(l) });
    expect([naming, origin]).toEqual(['ldm', 'inferred from the tensor shapes']);
    expect(config.block_out_channels).toEqual([128, 256, 512, 512]);
    expect(config.norm_num_groups).toBe(32);
    expect(notes.join('\n')).toContain('norm_num_groups 32');
    expect(vae.weights.get('decoder.mid_block.attentions.0.to_q.weight').length).toBe(512 * 512);
    expect(vae.factor).toBe(8);
  });
});

describe('reports', () => {
  const tiny = () => new Map(golden('tiny.vae.safetensors').tensors);
  const meta = () => golden('tiny.vae.safetensors').metadata;

  function message(f: () => unknown): string {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(DitMoeError);
      return (e as Error).message;
    }
    throw new Error('no error');
  }

  it('missing, wrong-shaped and unexpected tensors are named in one line', () => {
    const t = tiny();
    t.delete('decoder.up_blocks.1.resnets.0.conv2.bias');
    t.set('encoder.conv_in.weight', { ...t.get('encoder.conv_in.weight')!, shape: [16, 3, 1, 9] });
    t.set('decoder.extra.weight', t.get('quant_conv.bias')!);
    const msg = message(() => loadVaeFromTensors(t, meta(), 'v.safetensors', refKernels));
    expect(msg).toMatch(/^v\.safetensors: /);
    expect(msg).toContain('1 missing (decoder.up_blocks.1.resnets.0.conv2.bias)');
    expect(msg).toContain('encoder.conv_in.weight: expected [16, 3, 3, 3], got [16, 3, 1, 9]');
    expect(msg).toContain('1 unexpected (decoder.extra.weight)');
    expect(msg).not.toContain('\n');
  });

  it('a 16-channel VAE configuration (SD3 / FLUX) does not fit 4-channel weights', () => {
    const flux = { ...JSON.parse(meta().config), latent_channels: 16, use_quant_conv: false, use_post_quant_conv: false, shift_factor: 0.1159 };
    const msg = message(() => loadVaeFromTensors(tiny(), {}, 'flux', refKernels, { config: flux }));
    expect(msg).toContain('16 latent channels');
    expect(msg).toContain('decoder.conv_in.weight: expected [64, 16, 3, 3], got [64, 4, 3, 3]');
  });

  it('inferred groups that do not divide the widths ask for norm_num_groups', () => {
    expect(message(() => loadVaeFromTensors(tiny(), {}, 'tiny', refKernels))).toContain('norm_num_groups');
  });

  it('a file that is no VAE says so', () => {
    expect(message(() => loadVaeFromTensors(golden('tiny.model.safetensors').tensors, {}, 'dit', refKernels))).toContain('not a Stable Diffusion VAE');
  });
});

describe('TAESD names', () => {
  it("diffusers' AutoencoderTiny names give the same halves and outputs as taesd.py's", () => {
    const enc = golden('tiny.taesd_encoder.safetensors').tensors;
    const dec = golden('tiny.taesd_decoder.safetensors').tensors;
    const tiny = new Map<string, StTensor>();
    for (const [k, v] of enc) tiny.set(`encoder.layers.${k}`, v);
    for (const [k, v] of dec) tiny.set(`decoder.layers.${k.replace(/^(\d+)/, (d) => String(Number(d) - 1))}`, v);
    const h = taesdHalves(tiny, 'tiny');
    expect([...h.encoder!.keys()].sort()).toEqual([...enc.keys()].sort());
    expect([...h.decoder!.keys()].sort()).toEqual([...dec.keys()].sort());
    const g = golden('tiny.taesd_case.safetensors');
    const out = loadTaesdHalf('decoder', h.decoder!, 'tiny', refKernels).forward(asFloat32(gt(g, 'in.latent')), 2, 4, 4);
    expectClose('out.taesd_decoded', out.data, gt(g, 'out.taesd_decoded'), 2e-4);
  });

  it('a TAESD half with a missing block tensor is reported', () => {
    const dec = new Map(golden('tiny.taesd_decoder.safetensors').tensors);
    dec.delete('9.conv.2.bias');
    expect(() => loadTaesdHalf('decoder', dec, 'd', refKernels)).toThrow(/1 missing \(9\.conv\.2\.bias\)/);
  });
});
