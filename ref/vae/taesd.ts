/**
 * TAESD, the tiny autoencoder of madebyollin/taesd (`taesd.py`), which approximates the SD VAE
 * on the diffusion model's (already scaled) latents and on images in [0, 1]:
 *   conv(a, b)   3×3, padding 1 (bias unless noted)
 *   Block(c)     out = relu(conv(relu(conv(relu(conv(x))))) + skip(x)),  skip: 1×1 without bias
 *                when the widths differ, else x; with `pool.*` tensors (use_midblock_gn) first
 *                x ← x + conv1×1(relu(GroupNorm(4, eps 1e-5)(conv1×1(x))))
 *   Encoder      conv(3, c), Block, [conv stride 2 (padding 1, no bias), Block ×3] ×3, conv(c, L)
 *   Decoder      tanh(x/3)·3, conv(L, c), relu, [Block ×3, nearest ×2, conv (no bias)] ×3, Block, conv(c, 3)
 * The layer list is taesd.py's `nn.Sequential` (indices are the tensor names' first field);
 * every width is read from the tensors. Decoder output in [0, 1] before any clamp.
 */
import { DitMoeError } from '../../core/errors.js';
import type { Kernels } from '../kernels.js';
import { convShape, type Conv2dShape } from './conv2d.js';
import { addInto, relu, tanhClamp } from './elementwise.js';
import { upsampleNearest2x } from './upsample.js';
import { moveDown, NamedWeights } from './weights.js';

type Layer = 'conv' | 'down' | 'block' | 'relu' | 'up' | 'clamp';

const B3: Layer[] = ['block', 'block', 'block'];
/** taesd.py's Encoder and Decoder, layer by layer ('down': the stride-2 conv; 'up': nn.Upsample, then a conv). */
export const TAESD_ENCODER: Layer[] = ['conv', 'block', 'down', ...B3, 'down', ...B3, 'down', ...B3, 'conv'];
export const TAESD_DECODER: Layer[] = ['clamp', 'conv', 'relu', ...B3, 'up', 'conv', ...B3, 'up', 'conv', ...B3, 'up', 'conv', 'block', 'conv'];

/** Names and shapes of one half, for the loader's report: widths c (inner) and L (latent). */
export function taesdParamSpecs(half: 'encoder' | 'decoder', c: number, L: number, pool = false): { name: string; shape: number[] }[] {
  const layers = half === 'encoder' ? TAESD_ENCODER : TAESD_DECODER;
  const s: { name: string; shape: number[] }[] = [];
  const last = layers.length - 1;
  layers.forEach((l, i) => {
    if (l === 'conv' || l === 'down') {
      const cin = i === 0 || (half === 'decoder' && i === 1) ? (half === 'encoder' ? 3 : L) : c;
      const cout = i === last ? (half === 'encoder' ? L : 3) : c;
      s.push({ name: `${i}.weight`, shape: [cout, cin, 3, 3] });
      const bias = l === 'conv' && !(half === 'decoder' && layers[i - 1] === 'up');
      if (bias) s.push({ name: `${i}.bias`, shape: [cout] });
    } else if (l === 'block') {
      const midblock = pool && (half === 'encoder' ? i >= 11 && i <= 13 : i >= 3 && i <= 5);
      if (midblock) s.push({ name: `${i}.pool.0.weight`, shape: [4 * c, c, 1, 1] }, { name: `${i}.pool.1.weight`, shape: [4 * c] }, { name: `${i}.pool.1.bias`, shape: [4 * c] }, { name: `${i}.pool.3.weight`, shape: [c, 4 * c, 1, 1] });
      for (const k of [0, 2, 4]) s.push({ name: `${i}.conv.${k}.weight`, shape: [c, c, 3, 3] }, { name: `${i}.conv.${k}.bias`, shape: [c] });
    }
  });
  return s;
}

export class TaesdHalf {
  readonly weights: NamedWeights;
  /** Latent channels. */
  readonly latentChannels: number;

  constructor(
    readonly half: 'encoder' | 'decoder',
    tensors: ReadonlyMap<string, Float32Array>,
    private readonly shapes: ReadonlyMap<string, readonly number[]>,
    readonly kernels: Kernels,
    readonly where = `TAESD ${half}`,
  ) {
    this.weights = new NamedWeights(tensors, where);
    const layers = half === 'encoder' ? TAESD_ENCODER : TAESD_DECODER;
    const first = half === 'encoder' ? '0.weight' : '1.weight';
    const lastConv = `${layers.length - 1}.weight`;
    const fs = this.shape(first);
    const ls = this.shape(lastConv);
    this.latentChannels = half === 'encoder' ? ls[0] : fs[1];
  }

  private shape(name: string): readonly number[] {
    const s = this.shapes.get(name);
    if (!s || s.length !== 4) throw new DitMoeError(`has no 4-dimensional tensor '${name}': not a TAESD ${this.half} in taesd.py's names`, this.where);
    return s;
  }

  /** x [N, C_in, H, W] → the half's output (a new plain array) and its shape. */
  forward(x: Float32Array, N: number, H: number, W: number): { data: Float32Array; shape: number[] } {
    const kern = this.kernels;
    const layers = this.half === 'encoder' ? TAESD_ENCODER : TAESD_DECODER;
    const w = this.weights;
    const base = kern.mark();
    try {
      let C = this.half === 'encoder' ? this.shape('0.weight')[1] : this.latentChannels;
      if (x.length !== N * C * H * W) throw new DitMoeError(`has ${x.length} values, [${N}, ${C}, ${H}, ${W}] needs ${N * C * H * W}`, this.half === 'encoder' ? 'image' : 'latents');
      let cur = kern.tensor(x.length);
      cur.set(x);
      for (let i = 0; i < layers.length; i++) {
        const l = layers[i];
        const n = N * C * H * W;
        if (l === 'clamp') tanhClamp(cur, cur, n);
        else if (l === 'relu') relu(cur, n);
        else if (l === 'up') {
          const out = kern.tensor(4 * n);
          upsampleNearest2x(out, cur, N, C, H, W);
          H *= 2;
          W *= 2;
          cur = moveDown(kern, base, out);
        } else if (l === 'conv' || l === 'down') {
          const [O, Ci] = this.shape(`${i}.weight`);
          if (Ci !== C) throw new DitMoeError(`tensor '${i}.weight' takes ${Ci} channels, layer ${i} gets ${C}`, this.where);
          const s: Conv2dShape = l === 'down' ? convShape(N, C, H, W, O, 3, 2, 1) : convShape(N, C, H, W, O, 3);
          const Ho = Math.floor((H + 2 - 3) / s.stride) + 1;
          const Wo = Math.floor((W + 2 - 3) / s.stride) + 1;
          const out = kern.tensor(N * O * Ho * Wo);
          kern.conv2d(out, cur, w.get(`${i}.weight`), w.has(`${i}.bias`) ? w.get(`${i}.bias`) : null, s);
          [C, H, W] = [O, Ho, Wo];
          cur = moveDown(kern, base, out);
        } else {
          const out = kern.tensor(n);
          this.block(out, cur, `${i}`, N, C, H, W);
          cur = moveDown(kern, base, out);
        }
      }
      return { data: cur.slice(), shape: [N, C, H, W] };
    } finally {
      kern.release(base);
    }
  }

  private block(out: Float32Array, x: Float32Array, pre: string, N: number, C: number, H: number, W: number): void {
    const kern = this.kernels;
    const w = this.weights;
    const n = N * C * H * W;
    const m = kern.mark();
    if (w.has(`${pre}.pool.0.weight`)) {
      const Cg = this.shape(`${pre}.pool.0.weight`)[0];
      const p = kern.tensor(N * Cg * H * W);
      kern.conv2d(p, x, w.get(`${pre}.pool.0.weight`), null, convShape(N, C, H, W, Cg, 1));
      const g = kern.tensor(N * Cg * H * W);
      kern.groupNorm(g, p, w.get(`${pre}.pool.1.weight`), w.get(`${pre}.pool.1.bias`), N, Cg, H * W, 4, 1e-5, false);
      relu(g);
      const q = kern.tensor(n);
      kern.conv2d(q, g, w.get(`${pre}.pool.3.weight`), null, convShape(N, Cg, H, W, C, 1));
      addInto(q, x, n);
      x = q;
    }
    const a = kern.tensor(n);
    const b = kern.tensor(n);
    kern.conv2d(a, x, w.get(`${pre}.conv.0.weight`), w.get(`${pre}.conv.0.bias`), convShape(N, C, H, W, C, 3));
    relu(a, n);
    kern.conv2d(b, a, w.get(`${pre}.conv.2.weight`), w.get(`${pre}.conv.2.bias`), convShape(N, C, H, W, C, 3));
    relu(b, n);
    kern.conv2d(out, b, w.get(`${pre}.conv.4.weight`), w.get(`${pre}.conv.4.bias`), convShape(N, C, H, W, C, 3));
    if (w.has(`${pre}.skip.weight`)) {
      kern.conv2d(a, x, w.get(`${pre}.skip.weight`), null, convShape(N, C, H, W, C, 1));
      addInto(out, a, n);
    } else addInto(out, x, n);
    relu(out, n);
    kern.release(m);
  }
}

/** TAESD: either half may be absent (a preview needs only the decoder). */
export class Taesd {
  constructor(
    readonly encoder: TaesdHalf | null,
    readonly decoder: TaesdHalf | null,
  ) {}

  /** Latents [N, L, H/8, W/8] of images [N, 3, H, W] in [0, 1]. */
  encode(image01: Float32Array, N: number, H: number, W: number): Float32Array {
    if (!this.encoder) throw new DitMoeError('no TAESD encoder was loaded', 'TAESD');
    if (H % 8 || W % 8) throw new DitMoeError(`size ${W}×${H} is not a multiple of 8`, 'image');
    return this.encoder.forward(image01, N, H, W).data;
  }

  /** Images [N, 3, 8h, 8w] in [0, 1] (before any clamp) of latents [N, L, h, w]. */
  decode(latents: Float32Array, N: number, h: number, w: number): Float32Array {
    if (!this.decoder) throw new DitMoeError('no TAESD decoder was loaded', 'TAESD');
    return this.decoder.forward(latents, N, h, w).data;
  }
}
