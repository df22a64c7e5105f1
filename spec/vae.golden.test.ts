/**
 * Golden: the Stable Diffusion VAE (diffusers' Encoder/Decoder) and TAESD (taesd.py) on the tiny
 * cases of golden/ (README: "The Stable Diffusion VAE", "TAESD"): every out.* of
 * tiny.vae_case — each encoder and decoder stage, the moments, the latent mean and sample, the
 * decoded image — from the weights in each of the three namings (diffusers, legacy diffusers,
 * original LDM), and both halves of TAESD, on every backend. Tolerance 2e-4 relative to
 * max(1, max|golden|), as the issue asks (one float32 forward; we reach ~1e-6).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { golden, gt, expectClose } from './golden.js';
import { asFloat32 } from '../io/safetensors.js';
import { backends } from './backends.js';
import { createWasmKernels } from '../wasm/node.js';
import type { Kernels } from '../ref/kernels.js';
import { loadVaeFromTensors } from '../io/vae/load.js';
import { loadTaesdHalf, taesdHalves } from '../io/vae/taesd.js';

const RTOL = 2e-4;
const wasm2 = await createWasmKernels({ threads: 2, minParallelFlops: 0 });
afterAll(() => wasm2.dispose());
const all: [string, Kernels][] = [...backends(), ['wasm 2 threads', wasm2]];

/** Checks every listed tensor, then fails once naming every stage that is off. */
function expectAll(pairs: [string, Float32Array | undefined][], g: ReturnType<typeof golden>): void {
  const bad: string[] = [];
  for (const [name, got] of pairs) {
    try {
      expect(got, `${name} computed`).toBeDefined();
      expectClose(name, got!, gt(g, name), RTOL);
    } catch (e) {
      bad.push((e as Error).message);
    }
  }
  if (bad.length) throw new Error(`${bad.length} stage(s) off:\n${bad.join('\n')}`);
}

describe.each(all)('VAE golden [%s]', (backend, kern) => {
  const namings = backend === 'ref' || backend === 'wasm' ? ['tiny.vae', 'tiny.vae_legacy', 'tiny.vae_ldm'] : ['tiny.vae'];
  for (const file of namings) {
    it(`${file}: every stage of tiny.vae_case`, () => {
      const f = golden(`${file}.safetensors`);
      // the diffusers file's configuration from its __metadata__.config, the others inferred from the shapes (groups given)
      const { vae, naming, origin } = file === 'tiny.vae' ? loadVaeFromTensors(f.tensors, f.metadata, file, kern) : loadVaeFromTensors(f.tensors, {}, file, kern, { groups: 8 });
      expect(origin).toBe(file === 'tiny.vae' ? '__metadata__.config' : 'inferred from the tensor shapes');
      expect(naming).toBe({ 'tiny.vae': 'diffusers', 'tiny.vae_legacy': 'legacy', 'tiny.vae_ldm': 'ldm' }[file]);
      const g = golden('tiny.vae_case.safetensors');
      const stages = new Map<string, Float32Array>();
      const hook = (name: string, d: Float32Array) => stages.set(`out.${name}`, d.slice());
      const image = asFloat32(gt(g, 'in.image'));
      const moments = vae.encodeMoments(image, 2, 32, 32, hook);
      const decoded = vae.decode(asFloat32(gt(g, 'in.latent')), 2, 4, 4, hook);
      const pairs: [string, Float32Array | undefined][] = [
        ['out.moments', moments],
        ['out.latent_mean', vae.encode(image, 2, 32, 32)],
        ['out.latent_sample', vae.encode(image, 2, 32, 32, asFloat32(gt(g, 'in.noise')))],
        ['out.decoded', decoded],
      ];
      for (const name of g.tensors.keys()) if (/^out\.(enc|dec)\./.test(name)) pairs.push([name, stages.get(name)]);
      expect(pairs.length).toBe(17); // every out.* of the case (20 tensors less 3 inputs)
      expectAll(pairs, g);
    });
  }

  it('TAESD: encoder and decoder of tiny.taesd_case', () => {
    const g = golden('tiny.taesd_case.safetensors');
    const enc = loadTaesdHalf('encoder', taesdHalves(golden('tiny.taesd_encoder.safetensors').tensors, 'enc').encoder!, 'enc', kern);
    const dec = loadTaesdHalf('decoder', taesdHalves(golden('tiny.taesd_decoder.safetensors').tensors, 'dec').decoder!, 'dec', kern);
    expectAll(
      [
        ['out.taesd_latent', enc.forward(asFloat32(gt(g, 'in.image01')), 2, 32, 32).data],
        ['out.taesd_decoded', dec.forward(asFloat32(gt(g, 'in.latent')), 2, 4, 4).data],
      ],
      g,
    );
  });
});
