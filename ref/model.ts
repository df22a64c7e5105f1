/**
 * DiT-MoE (official `DiT` of the DiT-MoE repository), read top-down like `models.py`:
 *   x_embed = PatchEmbed(x) + pos_embed                         x [N, C, H, W] → [N, T, D]
 *   c       = TimestepEmbed(t) + LabelEmbed(y)                  t, y [N] → [N, D]
 *   x       = Block_i(x, c) for i < depth                       (adaLN-Zero, attention, MoE)
 *   out     = unpatchify(FinalLayer(x, c))                      → [N, C_out, H, W]
 * C_out = 2C with learned sigma (eps, then the variance interpolation v).
 * The arithmetic goes through a `Kernels` object: the same code runs on `ref` and `wasm`.
 */
import { DitMoeError } from '../core/errors.js';
import type { DiTConfig } from './config.js';
import { dims, validateConfig } from './config.js';
import type { Kernels } from './kernels.js';
import { refKernels } from './refKernels.js';
import { ParamStore, paramSpecs } from './params.js';
import { inScope, STEM, type Weights } from './weights.js';
import { sameShape, shapeStr } from '../core/tensor.js';
import { siluForward, siluBackward } from './activations.js';
import { timestepEmbedForward, timestepEmbedBackward, type TimestepCache } from './timestepEmbedding.js';
import { labelEmbedForward, labelEmbedBackward } from './labelEmbedding.js';
import { patchEmbedForward, patchEmbedBackward, unpatchify, unpatchifyBackward } from './patchEmbed.js';
import { posEmbed2d } from './posEmbed.js';
import { blockForward, blockBackward, blockWeights, type BlockCache, type Trace } from './block.js';
import { finalLayerForward, finalLayerBackward, type FinalWeights, type FinalCache } from './finalLayer.js';
import { asFloat32, type StTensor } from '../core/dtype.js';

export type { Trace } from './block.js';

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  wrongShape: { name: string; expected: number[]; got: number[] }[];
  computed: string[]; // fixed tensors we computed because the file lacked them (pos_embed)
}

/** Everything backward needs from one training-mode forward. */
export interface ModelCache {
  N: number;
  patches: Float32Array; // [N·T, C·p·p]
  t: TimestepCache;
  y: Int32Array;
  c: Float32Array; // [N, D]
  siluC: Float32Array; // [N, D]
  blockIn: Float32Array[]; // input of each block [N, T, D]
  blocks: BlockCache[];
  finalIn: Float32Array;
  final: FinalCache;
  aux: number[]; // each block's balance loss
  mark: number; // the kernels' tensor mark before this forward: `release(cache)` frees the cache
}

export interface ForwardResult {
  out: Float32Array; // [N, C_out, H, W], a plain array (not a kernels tensor)
  aux: number[]; // each block's balance loss (alpha · Σ P·f), also in eval
  cache: ModelCache | null;
}

export class DiTModel {
  readonly config: DiTConfig;
  /** What the forward reads its weights from (ref/weights.ts). */
  weights: Weights;
  kernels: Kernels;
  private store: ParamStore | null;

  constructor(config: DiTConfig, params?: ParamStore | Weights, kernels: Kernels = refKernels) {
    this.config = validateConfig(config);
    this.weights = params ?? new ParamStore(paramSpecs(this.config));
    this.store = this.weights instanceof ParamStore ? this.weights : null;
    this.kernels = kernels;
  }

  /**
   * The parameters in one float32 buffer (training, backward). A model on a file's store gets
   * them from it on first use (from then on its forward reads them); a streamed one has none.
   */
  get params(): ParamStore {
    if (!this.store && this.weights.materialize) this.weights = this.store = this.weights.materialize();
    if (!this.store) throw new DitMoeError('its weights are read from the file as the forward needs them; training and backward need them in one float32 buffer (load it without a memory budget below its size)', 'model');
    return this.store;
  }

  /** Output shape for an input batch. */
  outputShape(N: number): number[] {
    const c = this.config;
    return [N, dims(c).outChannels, c.input_size, c.input_size];
  }

  private checkInputs(x: Float32Array, shape: readonly number[], t: ArrayLike<number>, y: ArrayLike<number>): number {
    const c = this.config;
    const want = [-1, c.in_channels, c.input_size, c.input_size];
    if (shape.length !== 4 || !want.every((d, i) => d === -1 || d === shape[i])) throw new DitMoeError(`expected shape [N, ${c.in_channels}, ${c.input_size}, ${c.input_size}], got ${shapeStr(shape)}`, 'x');
    const N = shape[0];
    if (x.length !== N * c.in_channels * c.input_size * c.input_size) throw new DitMoeError(`has ${x.length} elements, shape ${shapeStr(shape)} needs ${N * c.in_channels * c.input_size * c.input_size}`, 'x');
    if (t.length !== N) throw new DitMoeError(`has ${t.length} timesteps for a batch of ${N}`, 't');
    if (y.length !== N) throw new DitMoeError(`has ${y.length} labels for a batch of ${N}`, 'y');
    for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) throw new DitMoeError(`element ${i} is ${x[i]}; inputs must be finite`, 'x');
    for (let i = 0; i < N; i++) if (!Number.isFinite(t[i])) throw new DitMoeError(`t[${i}] is ${t[i]}; timesteps must be finite`, 't');
    return N;
  }

  /** The eval-mode forward: model(x, t, y) → [N, C_out, H, W]. */
  forward(x: Float32Array, shape: readonly number[], t: ArrayLike<number>, y: ArrayLike<number>, trace?: Trace): Float32Array {
    return this.run(x, shape, t, y, false, trace).out;
  }

  /**
   * The forward keeping what `backward` needs (training mode; labels are used as given). The
   * cache lives in the kernels' tensors: `release(cache)` when done with it (after backward).
   */
  forwardTrain(x: Float32Array, shape: readonly number[], t: ArrayLike<number>, y: ArrayLike<number>): ForwardResult {
    return this.run(x, shape, t, y, true);
  }

  /** Frees a training cache and everything allocated after it (a later cache too); it must not be used again. */
  release(cache: ModelCache): void {
    this.kernels.release(cache.mark);
  }

  /**
   * The forward. Activations are the kernels' tensors (on wasm, views of its memory): an eval
   * forward frees them before returning; a training forward keeps them in its cache. A trace
   * receives copies.
   */
  run(x: Float32Array, shape: readonly number[], t: ArrayLike<number>, y: ArrayLike<number>, train: boolean, trace?: Trace): ForwardResult {
    const N = this.checkInputs(x, shape, t, y);
    const mark = this.kernels.mark();
    let result: ForwardResult;
    try {
      const copies: Trace | undefined = trace && ((name, data, shape) => trace(name, data.slice(), shape));
      result = this.runOn(x, N, t, y, train, mark, copies);
    } catch (e) {
      this.kernels.release(mark); // a failed forward keeps nothing
      throw e;
    }
    if (!train) this.kernels.release(mark);
    return result;
  }

  private runOn(x: Float32Array, N: number, t: ArrayLike<number>, y: ArrayLike<number>, train: boolean, mark: number, trace?: Trace): ForwardResult {
    const c = this.config;
    const d = dims(c);
    const k = this.kernels;
    const p = this.weights;
    const { D, T } = d;
    const H = c.input_size;

    // x_embed = PatchEmbed(x) + pos_embed
    let h = k.tensor(N * T * D);
    const tEmb = new Float32Array(N * D);
    const yInt = Int32Array.from(y as ArrayLike<number>);
    const yEmb = new Float32Array(N * D);
    const { patches, tCache } = inScope(p, STEM, () => {
      const patches = patchEmbedForward(k, h, x, p.get('x_embedder.proj.weight'), p.get('x_embedder.proj.bias'), N, c.in_channels, H, H, c.patch_size, D);
      const pos = p.get('pos_embed');
      for (let n = 0; n < N; n++) for (let i = 0; i < T * D; i++) h[n * T * D + i] += pos[i];

      // c = t_emb + y_emb
      const tCache = timestepEmbedForward(k, tEmb, t, p.get('t_embedder.mlp.0.weight'), p.get('t_embedder.mlp.0.bias'), p.get('t_embedder.mlp.2.weight'), p.get('t_embedder.mlp.2.bias'), N, c.frequency_embedding_size, D);
      labelEmbedForward(yEmb, yInt, p.get('y_embedder.embedding_table.weight'), N, D, d.numLabels);
      return { patches, tCache };
    });
    const cond = new Float32Array(N * D);
    for (let i = 0; i < N * D; i++) cond[i] = tEmb[i] + yEmb[i];
    const siluC = new Float32Array(N * D);
    siluForward(siluC, cond);
    if (trace) {
      trace('t_freq', tCache.tFreq, [N, c.frequency_embedding_size]);
      trace('t_emb', tEmb, [N, D]);
      trace('y_emb', yEmb, [N, D]);
      trace('c', cond, [N, D]);
      trace('x_embed', h, [N, T, D]);
    }

    const blockIn: Float32Array[] = [];
    const blocks: BlockCache[] = [];
    const aux: number[] = [];
    for (let i = 0; i < c.depth; i++) {
      const next = k.tensor(N * T * D);
      const bc = inScope(p, i, () => blockForward(k, next, h, siluC, blockWeights(p, i, c), c, N, T, train, trace, `block${i}.`));
      aux.push(bc.moe.aux);
      if (train) {
        blockIn.push(h);
        blocks.push(bc);
      }
      h = next;
    }

    const P = c.patch_size * c.patch_size * d.outChannels;
    const fin = k.tensor(N * T * P);
    const finalCache = inScope(p, c.depth, () => finalLayerForward(k, fin, h, siluC, this.finalWeights(p), N, T, D, P));
    if (trace) trace('final', fin, [N, T, P]);
    const out = new Float32Array(N * d.outChannels * H * H);
    unpatchify(out, fin, N, d.outChannels, H, H, c.patch_size);
    if (trace) trace('eps', out, [N, d.outChannels, H, H]);
    const cache: ModelCache | null = train ? { N, patches, t: tCache, y: yInt, c: cond, siluC, blockIn, blocks, finalIn: h, final: finalCache, aux, mark } : null;
    return { out, aux, cache };
  }

  private finalWeights(p: Weights): FinalWeights {
    return { adaW: p.get('final_layer.adaLN_modulation.1.weight'), adaB: p.get('final_layer.adaLN_modulation.1.bias'), linW: p.get('final_layer.linear.weight'), linB: p.get('final_layer.linear.bias') };
  }

  /**
   * Backward of forwardTrain (accumulates into `grads`, a store of the same layout):
   * dout [N, C_out, H, W] is d loss / d output; every block's balance loss enters the total
   * with coefficient `daux` (1, as the official training does). Its temporaries are tensors
   * allocated after the cache: `release(cache)` frees them too.
   */
  backward(dout: Float32Array, cache: ModelCache, grads: ParamStore, daux = 1): void {
    const c = this.config;
    const d = dims(c);
    const k = this.kernels;
    const p = this.params;
    const { N } = cache;
    const { D, T } = d;
    const H = c.input_size;
    const P = c.patch_size * c.patch_size * d.outChannels;

    const dFin = k.tensor(N * T * P);
    unpatchifyBackward(dFin, dout, N, d.outChannels, H, H, c.patch_size);
    let dh = k.tensor(N * T * D);
    const dSiluC = new Float32Array(N * D);
    finalLayerBackward(k, dh, dSiluC, this.finalWeights(grads), dFin, cache.finalIn, cache.siluC, this.finalWeights(p), cache.final, N, T, D, P);
    for (let i = c.depth - 1; i >= 0; i--) {
      const dPrev = k.tensor(N * T * D);
      blockBackward(k, dPrev, dSiluC, blockWeights(grads, i, c), dh, cache.siluC, blockWeights(p, i, c), cache.blocks[i], c, N, T, daux);
      dh = dPrev;
    }
    // x_embed = PatchEmbed(x) + pos_embed (pos_embed is fixed)
    patchEmbedBackward(k, grads.get('x_embedder.proj.weight'), grads.get('x_embedder.proj.bias'), dh, cache.patches, p.get('x_embedder.proj.weight'), N * T, c.in_channels * c.patch_size * c.patch_size, D);
    // siluC = silu(c), c = t_emb + y_emb
    const dc = new Float32Array(N * D);
    siluBackward(dc, dSiluC, cache.c);
    timestepEmbedBackward(k, grads.get('t_embedder.mlp.0.weight'), grads.get('t_embedder.mlp.0.bias'), grads.get('t_embedder.mlp.2.weight'), grads.get('t_embedder.mlp.2.bias'), dc, cache.t, p.get('t_embedder.mlp.2.weight'), p.get('t_embedder.mlp.0.weight'), N, c.frequency_embedding_size, D);
    labelEmbedBackward(grads.get('y_embedder.embedding_table.weight'), dc, cache.y, N, D);
  }

  /**
   * Classifier-free guidance (official `forward_with_cfg`): the first half of the batch is
   * run twice, with the labels of the first half (conditional) and of the second half (null);
   * on the first `channels` output channels
   *   eps = eps_null + scale · (eps_cond - eps_null)
   * and both halves of the output get it; the remaining channels are the model's own.
   * The official code guides 3 channels (`channels = 3`); the standard form guides all
   * `in_channels` (pass `channels = config.in_channels`).
   */
  forwardWithCfg(x: Float32Array, shape: readonly number[], t: ArrayLike<number>, y: ArrayLike<number>, scale: number, channels = 3): Float32Array {
    if (!Number.isFinite(scale)) throw new DitMoeError(`guidance scale ${scale} is not finite`, 'cfg_scale');
    const N = shape[0];
    if (N % 2 !== 0) throw new DitMoeError(`guidance needs an even batch [conditional; null], got ${N}`, 'x');
    const per = x.length / N;
    const combined = new Float32Array(x.length);
    combined.set(x.subarray(0, (N / 2) * per));
    combined.set(x.subarray(0, (N / 2) * per), (N / 2) * per);
    const out = this.forward(combined, shape, t, y);
    const Cout = dims(this.config).outChannels;
    const HW = this.config.input_size * this.config.input_size;
    const g = Math.min(channels, Cout);
    const half = N / 2;
    for (let n = 0; n < half; n++)
      for (let ch = 0; ch < g; ch++)
        for (let i = 0; i < HW; i++) {
          const a = (n * Cout + ch) * HW + i;
          const b = ((n + half) * Cout + ch) * HW + i;
          const v = out[b] + scale * (out[a] - out[b]);
          out[a] = v;
          out[b] = v;
        }
    return out;
  }
}

/**
 * Checks a file's tensors (by shape) against the configuration's state_dict: missing or
 * wrong-shaped tensors are an error listing every one; unexpected tensors are reported.
 * `pos_embed` is fixed: reported as computed when absent.
 */
export function checkWeightShapes(config: DiTConfig, tensors: ReadonlyMap<string, { readonly shape: readonly number[] }>, where = 'weights'): LoadReport {
  const specs = paramSpecs(config);
  const report: LoadReport = { missing: [], unexpected: [], wrongShape: [], computed: [] };
  const known = new Set(specs.map((s) => s.name));
  for (const s of specs) {
    const t = tensors.get(s.name);
    if (!t) (s.name === 'pos_embed' ? report.computed : report.missing).push(s.name);
    else if (!sameShape(t.shape, s.shape)) report.wrongShape.push({ name: s.name, expected: s.shape, got: [...t.shape] });
  }
  for (const name of tensors.keys()) if (!known.has(name)) report.unexpected.push(name);
  if (report.missing.length || report.wrongShape.length) {
    const parts: string[] = [];
    if (report.missing.length) parts.push(`${report.missing.length} missing (${report.missing.slice(0, 5).join(', ')}${report.missing.length > 5 ? ', ...' : ''})`);
    if (report.wrongShape.length) parts.push(`${report.wrongShape.length} wrong-shaped (${report.wrongShape.slice(0, 5).map((w) => `${w.name}: expected ${shapeStr(w.expected)}, got ${shapeStr(w.got)}`).join('; ')}${report.wrongShape.length > 5 ? '; ...' : ''})`);
    throw new DitMoeError(`weights do not fit the configuration: ${parts.join('; ')}`, where);
  }
  return report;
}

/** The fixed position embedding of a configuration (what a file without `pos_embed` gets). */
export function computedPosEmbed(config: DiTConfig): Float32Array {
  return posEmbed2d(config.hidden_size, config.input_size / config.patch_size);
}

/** Loads weights by their official state_dict names into one float32 buffer (checked by `checkWeightShapes`). */
export function loadWeights(config: DiTConfig, tensors: Map<string, StTensor>, where = 'weights'): { params: ParamStore; report: LoadReport } {
  const report = checkWeightShapes(config, tensors, where);
  const params = new ParamStore(paramSpecs(config));
  for (const s of params.specs) {
    const t = tensors.get(s.name);
    params.get(s.name).set(t ? asFloat32(t) : computedPosEmbed(config));
  }
  return { params, report };
}

/** Reads the configuration stored in a file's `__metadata__.config`. */
export function configFromMetadata(metadata: Record<string, string>, where: string): DiTConfig {
  const raw = metadata.config;
  if (raw === undefined) throw new DitMoeError('has no __metadata__.config; state the configuration (--config or --preset)', where);
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch (e) {
    throw new DitMoeError(`__metadata__.config is not valid JSON (${(e as Error).message})`, where);
  }
  return validateConfig(obj, `${where}: __metadata__.config`);
}
