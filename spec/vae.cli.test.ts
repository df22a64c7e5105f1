/**
 * The VAE on the command line: `sample --vae` (RGB PNG) equals `sample --out .safetensors` then
 * `decode`; `--preview` writes TAESD previews; `encode` (PNG, a non-square PNG, JPEG) writes
 * latents that `train` accepts and that equal the library's encoding of the same pictures; a
 * diffusers folder and a Stable Diffusion .ckpt (LDM names under first_stage_model.) decode the
 * same; bad input is one line, exit 2, nothing written.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { GOLDEN_DIR, golden, expectClose } from './golden.js';
import { runCli } from './runCli.js';
import { parseSafetensors, serializeSafetensors, asFloat32, f32, type StTensor } from '../io/safetensors.js';
import { writePtCheckpoint } from '../io/pt/checkpoint.js';
import { loadVaeFromTensors } from '../io/vae/load.js';
import { refKernels } from '../ref/refKernels.js';
import { fitImage, readImageFile } from '../cli/imageFiles.js';

const G = (f: string) => path.join(GOLDEN_DIR, f);
let dir = '';
const at = (f: string) => path.join(dir, f);

function expectBadInput(r: ReturnType<typeof runCli>, ...fragments: string[]) {
  expect(r.code, r.err).toBe(2);
  expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
  expect(r.err).not.toMatch(/\bat .*\.js:\d+/);
  for (const f of fragments) expect(r.err).toContain(f);
}

const pngPixels = (file: string) => PNG.sync.read(fs.readFileSync(file));

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-vae-'));
  const p = new PNG({ width: 40, height: 24 });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i * 7) % 256;
  fs.writeFileSync(at('wide.png'), PNG.sync.write(p));
  const d = Buffer.alloc(32 * 32 * 4);
  for (let i = 0; i < d.length; i++) d[i] = (i * 13) % 256;
  fs.writeFileSync(at('square.jpg'), jpeg.encode({ data: d, width: 32, height: 32 }, 90).data);
  fs.writeFileSync(at('broken.png'), 'this is not a picture');
});

describe('sample --vae, --preview, decode', () => {
  it('sample --vae writes the RGB pictures that decode gives for the same latents, and --preview a TAESD preview', () => {
    const base = ['sample', '--model', G('tiny.model.safetensors'), '--count', '3', '--steps', '3', '--sampler', 'ddim', '--seed', '5'];
    let r = runCli(...base, '--vae', G('tiny.vae.safetensors'), '--preview', G('tiny.taesd_decoder.safetensors'), '--out', at('s.png'));
    expect(r.code, r.err).toBe(0);
    expect(fs.existsSync(at('s.preview.png'))).toBe(true);
    r = runCli(...base, '--out', at('s.safetensors'));
    expect(r.code, r.err).toBe(0);
    r = runCli('decode', at('s.safetensors'), '--vae', G('tiny.vae_legacy.safetensors'), '--out', at('d.png'));
    expect(r.code, r.err).toBe(0);
    const a = pngPixels(at('s.png'));
    const b = pngPixels(at('d.png'));
    expect([a.width, a.height]).toEqual([b.width, b.height]);
    expect(a.width).toBeGreaterThanOrEqual(2 * 64); // 8×8 latents → 64×64 pictures, 2 columns
    let diff = 0;
    for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
    expect(diff).toBeLessThanOrEqual(1); // one 8-bit step: the two namings' float32 sums may round differently
  });

  it('a diffusers folder and a Stable Diffusion .ckpt (LDM names under first_stage_model.) decode like the single file', () => {
    fs.mkdirSync(at('vae-folder'), { recursive: true });
    const st = golden('tiny.vae.safetensors');
    fs.writeFileSync(at('vae-folder/config.json'), JSON.stringify({ _class_name: 'AutoencoderKL', ...JSON.parse(st.metadata.config) }));
    fs.writeFileSync(at('vae-folder/diffusion_pytorch_model.safetensors'), serializeSafetensors(st.tensors));
    const ldm = golden('tiny.vae_ldm.safetensors');
    const sd = new Map<string, StTensor>([...ldm.tensors].map(([k, v]) => [`first_stage_model.${k}`, v]));
    sd.set('model.diffusion_model.out.2.bias', f32([4], new Float32Array(4)));
    fs.writeFileSync(at('sd.ckpt'), writePtCheckpoint(sd, { nestUnder: 'state_dict' }));
    const lat = f32([1, 4, 4, 4], Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)));
    fs.writeFileSync(at('lat.safetensors'), serializeSafetensors([['latents', lat]]));
    const outs = [];
    for (const vae of [G('tiny.vae.safetensors'), at('vae-folder'), at('sd.ckpt')]) {
      const out = at(`dec-${outs.length}.safetensors`);
      const r = runCli('decode', at('lat.safetensors'), '--vae', vae, '--groups', '8', '--out', out);
      expect(r.code, r.err).toBe(0);
      outs.push(asFloat32(parseSafetensors(new Uint8Array(fs.readFileSync(out))).tensors.get('images')!));
    }
    expectClose('folder', outs[1], outs[0], 1e-6);
    expectClose('ckpt', outs[2], outs[0], 1e-6);
  });
});

describe('encode', () => {
  it('PNG (non-square) and JPEG to latents equal to the library, which train accepts', () => {
    const r = runCli('encode', at('wide.png'), at('square.jpg'), '--vae', G('tiny.vae.safetensors'), '--size', '32', '--class', '0,1', '--out', at('latents.safetensors'), '--backend', 'ref');
    expect(r.code, r.err).toBe(0);
    const st = parseSafetensors(new Uint8Array(fs.readFileSync(at('latents.safetensors'))));
    expect(st.metadata.kind).toBe('vae_latents');
    expect(st.tensors.get('images')!.shape).toEqual([2, 4, 4, 4]);
    const g = golden('tiny.vae.safetensors');
    const { vae } = loadVaeFromTensors(g.tensors, g.metadata, 'tiny', refKernels);
    const want = new Float32Array(2 * 64);
    [at('wide.png'), at('square.jpg')].forEach((f, n) => want.set(vae.encode(fitImage(readImageFile(f), 32, 32).data, 1, 32, 32), n * 64));
    expectClose('latents', asFloat32(st.tensors.get('images')!), want, 1e-6);
    const t = runCli('train', '--data', at('latents.safetensors'), '--preset', 'custom', '--config', '{"input_size":4,"in_channels":4,"patch_size":2,"hidden_size":32,"depth":1,"num_heads":2,"num_experts":2,"num_experts_per_tok":1,"mlp_ratio":2,"n_shared_experts":1,"num_classes":2,"learn_sigma":false}', '--steps', '1', '--batch', '2', '--out', at('run'));
    expect(t.code, t.err).toBe(0);
  });

  it('--sample draws from the posterior (differs from the mean, same for the same seed)', () => {
    const common = [at('square.jpg'), '--vae', G('tiny.vae.safetensors'), '--size', '32', '--sample'];
    expect(runCli('encode', ...common, '--seed', '1', '--out', at('s1.safetensors')).code).toBe(0);
    expect(runCli('encode', ...common, '--seed', '1', '--out', at('s1b.safetensors')).code).toBe(0);
    expect(fs.readFileSync(at('s1.safetensors')).equals(fs.readFileSync(at('s1b.safetensors')))).toBe(true);
    expect(runCli('encode', ...common.filter((a) => a !== '--sample'), '--out', at('m.safetensors')).code).toBe(0);
    const lat = (f: string) => asFloat32(parseSafetensors(new Uint8Array(fs.readFileSync(at(f)))).tensors.get('images')!);
    const [a, b] = [lat('s1.safetensors'), lat('m.safetensors')];
    expect(a.some((v, i) => Math.abs(v - b[i]) > 1e-3)).toBe(true);
  });
});

describe('bad input: one line, exit 2, nothing written', () => {
  it('an undecodable picture, a size not divisible by 8', () => {
    expectBadInput(runCli('encode', at('broken.png'), '--vae', G('tiny.vae.safetensors'), '--out', at('out1.safetensors')), 'broken.png', 'neither a PNG nor a JPEG');
    expectBadInput(runCli('encode', at('wide.png'), '--vae', G('tiny.vae.safetensors'), '--size', '30', '--out', at('out2.safetensors')), '--size', 'multiple of 8');
    expect(fs.existsSync(at('out1.safetensors')) || fs.existsSync(at('out2.safetensors'))).toBe(false);
  });

  it('latents with the wrong channel count; a 16-channel VAE for a 4-channel model; a VAE with a missing tensor', () => {
    fs.writeFileSync(at('lat16.safetensors'), serializeSafetensors([['latents', f32([1, 16, 4, 4], new Float32Array(256))]]));
    expectBadInput(runCli('decode', at('lat16.safetensors'), '--vae', G('tiny.vae.safetensors'), '--out', at('out3.png')), 'lat16.safetensors', '16 latent channels', 'takes 4');
    const st = golden('tiny.vae.safetensors');
    const flux = { ...JSON.parse(st.metadata.config), latent_channels: 16 };
    fs.writeFileSync(at('flux.safetensors'), serializeSafetensors(st.tensors, { config: JSON.stringify(flux) }));
    expectBadInput(runCli('sample', '--model', G('tiny.model.safetensors'), '--vae', at('flux.safetensors'), '--count', '1', '--steps', '1', '--out', at('out4.png')), 'flux.safetensors', 'decoder.conv_in.weight');
    const missing = new Map(st.tensors);
    missing.delete('decoder.conv_out.bias');
    fs.writeFileSync(at('missing.safetensors'), serializeSafetensors(missing, st.metadata));
    expectBadInput(runCli('decode', at('lat.safetensors'), '--vae', at('missing.safetensors'), '--out', at('out5.png')), 'missing.safetensors', '1 missing (decoder.conv_out.bias)');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('out') || f.startsWith('.'))).toEqual([]);
  });
});
