/**
 * Case kinds `vae` (golden/tiny.vae_case: the Stable Diffusion VAE, --model the VAE file in any
 * naming) and `taesd` (golden/tiny.taesd_case: --model the TAESD decoder, --encoder the encoder,
 * or one diffusers AutoencoderTiny file holding both). Outputs under the golden names:
 *   vae:   out.moments, out.latent_mean, out.latent_sample (with in.noise), out.decoded (of
 *          in.latent), and every stage out.enc.* / out.dec.*
 *   taesd: out.taesd_latent (encoder on in.image01), out.taesd_decoded (decoder on in.latent)
 * A VAE file without a configuration takes the case's __metadata__.config.
 */
import { DitMoeError } from '../core/errors.js';
import { asFloat32, f32, type StTensor } from '../io/safetensors.js';
import { loadVaeFromTensors } from '../io/vae/load.js';
import { loadTaesdHalf, taesdHalves } from '../io/vae/taesd.js';
import { input, registerCaseKind, type CaseContext } from './case.js';

function files(ctx: CaseContext, which: 'model' | 'encoder') {
  if (!ctx.files) throw new DitMoeError(`this case kind needs --${which}`, ctx.where);
  return ctx.files(which);
}

function image4(t: StTensor, name: string, where: string): [number, number, number, number] {
  if (t.shape.length !== 4) throw new DitMoeError(`input '${name}' has shape [${t.shape.join(', ')}], expected [N, C, H, W]`, where);
  return t.shape as [number, number, number, number];
}

registerCaseKind('vae', (c, ctx) => {
  const f = files(ctx, 'model');
  let caseConfig: unknown;
  if (f.metadata.config === undefined && c.metadata.config !== undefined) {
    try {
      caseConfig = JSON.parse(c.metadata.config);
    } catch {
      caseConfig = undefined;
    }
  }
  const { vae } = loadVaeFromTensors(f.tensors, f.metadata, f.where, ctx.kernels, { config: caseConfig });
  const out = new Map<string, StTensor>();
  const put = (name: string, data: Float32Array, shape: number[]) => out.set(name, f32(shape, Float32Array.from(data)));
  const L = vae.config.latent_channels;
  const img = c.tensors.get('in.image');
  if (img) {
    const [N, , H, W] = image4(img, 'in.image', ctx.where);
    const x = asFloat32(img);
    const moments = vae.encodeMoments(x, N, H, W, (name, d, shape) => put(`out.${name}`, d, shape));
    const [h, w] = [H / vae.factor, W / vae.factor];
    put('out.moments', moments, [N, 2 * L, h, w]);
    put('out.latent_mean', vae.encode(x, N, H, W), [N, L, h, w]);
    const noise = c.tensors.get('in.noise');
    if (noise) put('out.latent_sample', vae.encode(x, N, H, W, asFloat32(noise)), [N, L, h, w]);
  }
  const lat = input(c, 'in.latent', ctx.where);
  const [N, , h, w] = image4(lat, 'in.latent', ctx.where);
  const dec = vae.decode(asFloat32(lat), N, h, w, (name, d, shape) => put(`out.${name}`, d, shape));
  put('out.decoded', dec, [N, vae.config.out_channels, h * vae.factor, w * vae.factor]);
  return out;
});

registerCaseKind('taesd', (c, ctx) => {
  const m = files(ctx, 'model');
  const halves = taesdHalves(m.tensors, m.where);
  const out = new Map<string, StTensor>();
  if (!halves.encoder && c.tensors.has('in.image01') && ctx.files) {
    const e = ctx.files('encoder');
    halves.encoder = taesdHalves(e.tensors, e.where).encoder;
    if (!halves.encoder) throw new DitMoeError('holds no TAESD encoder', e.where);
  }
  if (halves.encoder && c.tensors.has('in.image01')) {
    const t = input(c, 'in.image01', ctx.where);
    const [N, , H, W] = image4(t, 'in.image01', ctx.where);
    const r = loadTaesdHalf('encoder', halves.encoder, m.where, ctx.kernels).forward(asFloat32(t), N, H, W);
    out.set('out.taesd_latent', f32(r.shape, r.data));
  }
  if (!halves.decoder) throw new DitMoeError('holds no TAESD decoder (pass the decoder as --model)', m.where);
  const t = input(c, 'in.latent', ctx.where);
  const [N, , h, w] = image4(t, 'in.latent', ctx.where);
  const r = loadTaesdHalf('decoder', halves.decoder, m.where, ctx.kernels).forward(asFloat32(t), N, h, w);
  out.set('out.taesd_decoded', f32(r.shape, r.data));
  return out;
});
