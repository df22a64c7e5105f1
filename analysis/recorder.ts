/**
 * The routing recorder: watches the router of every MoE layer while a sampler runs and keeps
 * counts, not logs (unless `keepRaw`). For each layer l, over the conditional images only:
 *   classCount [L, C, E]   routing slots (token × chosen expert) per class label and expert
 *   stepCount  [L, S, E]   per denoising step (0 = the first, noisiest, step)
 *   posCount   [L, T, E]   per patch position (row-major over the gridSize × gridSize patches)
 *   …Weight    same shapes: the summed gate weights of those slots
 *   balance    [L, S]      Σ_i P_i·f_i of the step's routing (balanceLossForward with alpha 1:
 *                          1 when the load is even, up to E when one expert takes everything)
 *   entropy    [L, S]      Σ over tokens of H(scores) = −Σ_e p_e ln p_e (nats, ≤ ln E)
 *   changes    [L, S]      tokens whose chosen top-k set differs from the previous step's
 * Memory: L·(C + S + T)·E numbers plus one step of top-k indices per layer, whatever the
 * number of steps or images.
 *
 * Guidance: DDPM, DDIM and DPM-Solver on a noise predictor call the model on the doubled batch
 * [x; x] with labels [y; null] (layout 'doubled': the first half is recorded); the flow samplers
 * call it twice per evaluation, conditional then null (layout 'separate': calls whose labels are
 * all the null class are skipped). Each recorded call is one model evaluation.
 */
import { DitMoeError } from '../core/errors.js';
import { balanceLossForward } from '../ref/balanceLoss.js';
import type { Trace } from '../ref/block.js';
import type { DiffusionModelFn } from '../ref/diffusion/samplers.js';
import { guidancePasses, samplerNeeds, type Objective, type SamplerName } from '../ref/diffusion/sampling.js';

export type GuidanceLayout = 'none' | 'doubled' | 'separate';

/**
 * How a sampler lays out guided model calls (the one sampling setup decides:
 * ref/diffusion/sampling.ts `guidancePasses`; `objective`: what the model predicts, which matters
 * for DPM-Solver++ — default: the sampler's own, noise for the DDPM family).
 */
export function guidanceLayout(sampler: SamplerName, guided: boolean, objective?: Objective): GuidanceLayout {
  if (!guided) return 'none';
  return guidancePasses({ sampler }, objective ?? (samplerNeeds(sampler) === 'flow' ? 'flow' : 'ddpm'));
}

export interface RecorderOptions {
  layers: number; // L, MoE layers (depth)
  experts: number; // E
  k: number; // experts per token
  gridSize: number; // patches per side; T = gridSize²
  labels: number; // C, rows of the class table (num_classes, + 1 with a null class)
  steps: number; // S, denoising steps that will be recorded
  seqAux?: boolean; // balance loss per sequence (config seq_aux)
  keepRaw?: boolean; // also keep every step's top-k indices and weights (memory grows with S)
  /** Keep, for one image, its routing map and its model input at these steps (for the expert-map picture). */
  watch?: { image: number; steps: number[] };
}

/** One layer's router output for one model call; rows [≥ N·T] (only the first N·T are read). */
export interface LayerRouting {
  topkIdx: Int32Array; // [M, k], sorted ascending per token
  topkWeight: Float32Array; // [M, k]
  scores: Float32Array; // [M, E]
}

/** The watched image at one step: per layer, each token's experts ordered by weight (largest first). */
export interface WatchedStep {
  step: number;
  t: number;
  input: Float32Array | null; // the model input x_t of the image [C, H, W]
  experts: Int32Array[]; // [L] of [T, k]
  weights: Float32Array[]; // [L] of [T, k]
}

export interface LayerStats {
  layer: number;
  load: number[]; // [E] routing slots per expert
  loadFraction: number[]; // [E] load / all slots (sums to 1; even = 1/E)
  meanWeight: number[]; // [E] mean gate weight of the slots routed to e (0 when unused)
  loadEntropy: number; // H(loadFraction) / ln E: 1 = even load, 0 = one expert
  balance: number; // mean over steps of Σ P_i·f_i (1 = even)
  balanceAux: number; // alpha · balance, the training loss term this routing would give
  balanceByStep: number[]; // [S]
  scoreEntropy: number; // mean per-token entropy of the router's softmax (nats, max ln E)
  scoreEntropyByStep: number[]; // [S]
  pairChangeRate: number | null; // fraction of (token, adjacent steps) whose top-k set changed
  pairChangeByStep: (number | null)[]; // [S], entry s compares step s−1 with s (null at 0)
  classExpert: number[][]; // [C, E] slot counts
  stepExpert: number[][]; // [S, E]
  posExpert: number[][]; // [T, E]
  stepExpertWeight: number[][]; // [S, E] mean gate weight of the slots (0 when none)
}

export interface RoutingStats {
  layers: number;
  experts: number;
  k: number;
  gridSize: number;
  tokens: number; // T per image
  steps: number; // recorded steps
  images: number; // conditional images per step
  imageLabels: number[]; // [N] class of each image
  stepT: number[]; // [S] the model's timestep input at each step
  classTokens: number[]; // [C] tokens recorded per class (over all steps)
  tokensPerStep: number[]; // [S]
  alpha: number;
  summary: { balance: number; scoreEntropy: number; maxEntropy: number; loadEntropy: number; pairChangeRate: number | null };
  layer: LayerStats[];
}

/** A model forward that reports intermediates (DiTModel.forward). */
export type TracedForward = (x: Float32Array, shape: number[], t: Float32Array, y: Int32Array, trace: Trace) => Float32Array;

export class RoutingRecorder {
  readonly L: number;
  readonly E: number;
  readonly k: number;
  readonly T: number;
  readonly C: number;
  readonly S: number;
  readonly classCount: Float64Array; // [L, C, E]
  readonly classWeight: Float64Array;
  readonly stepCount: Float64Array; // [L, S, E]
  readonly stepWeight: Float64Array;
  readonly posCount: Float64Array; // [L, T, E]
  readonly posWeight: Float64Array;
  readonly balance: Float64Array; // [L, S]
  readonly entropy: Float64Array; // [L, S]
  readonly changes: Float64Array; // [L, S]
  readonly compared: Float64Array; // [L, S]
  readonly classTokens: Float64Array; // [C]
  readonly tokensPerStep: Float64Array; // [S]
  readonly stepT: Float64Array; // [S]
  readonly watched: WatchedStep[] = [];
  readonly raw: { topkIdx: Int32Array; topkWeight: Float32Array }[][] = []; // [S][L], when keepRaw
  private prev: (Int32Array | null)[];
  private imageLabels: Int32Array | null = null;
  private recorded = 0;

  constructor(readonly opts: RecorderOptions) {
    const { layers: L, experts: E, k, gridSize, labels: C, steps: S } = opts;
    for (const [name, v] of Object.entries({ layers: L, experts: E, k, gridSize, labels: C, steps: S })) if (!Number.isInteger(v) || v < 1) throw new DitMoeError(`${name} = ${v}, expected a positive integer`, 'recorder');
    if (k > E) throw new DitMoeError(`k = ${k} exceeds the ${E} experts`, 'recorder');
    this.L = L;
    this.E = E;
    this.k = k;
    this.T = gridSize * gridSize;
    this.C = C;
    this.S = S;
    this.classCount = new Float64Array(L * C * E);
    this.classWeight = new Float64Array(L * C * E);
    this.stepCount = new Float64Array(L * S * E);
    this.stepWeight = new Float64Array(L * S * E);
    this.posCount = new Float64Array(L * this.T * E);
    this.posWeight = new Float64Array(L * this.T * E);
    this.balance = new Float64Array(L * S);
    this.entropy = new Float64Array(L * S);
    this.changes = new Float64Array(L * S);
    this.compared = new Float64Array(L * S);
    this.classTokens = new Float64Array(C);
    this.tokensPerStep = new Float64Array(S);
    this.stepT = new Float64Array(S);
    this.prev = new Array<Int32Array | null>(L).fill(null);
  }

  /** Steps recorded so far. */
  get steps(): number {
    return this.recorded;
  }

  /**
   * Records one denoising step: N conditional images with labels [N], the model's timestep t,
   * and each layer's routing (rows 0..N·T of each are these images' tokens, image-major).
   * `input` (optional) is the model input [≥ N, C, H, W], kept for a watched image.
   */
  recordStep(t: number, labels: ArrayLike<number>, layers: readonly LayerRouting[], input?: Float32Array): void {
    const { L, E, k, T, C } = this;
    const s = this.recorded;
    if (s >= this.S) throw new DitMoeError(`more denoising steps than the ${this.S} announced`, 'recorder');
    if (layers.length !== L) throw new DitMoeError(`got routing for ${layers.length} layers, expected ${L}`, 'recorder');
    const N = labels.length;
    const M = N * T;
    for (let n = 0; n < N; n++) if (!Number.isInteger(labels[n]) || labels[n] < 0 || labels[n] >= C) throw new DitMoeError(`label ${labels[n]} of image ${n} is outside [0, ${C - 1}]`, 'recorder');
    if (!this.imageLabels) this.imageLabels = Int32Array.from(labels);
    this.stepT[s] = t;
    this.tokensPerStep[s] = M;
    for (let n = 0; n < N; n++) this.classTokens[labels[n]] += T;
    const watch = this.opts.watch && this.opts.watch.image < N && this.opts.watch.steps.includes(s) ? this.opts.watch.image : -1;
    const w: WatchedStep | null = watch >= 0 ? { step: s, t, input: input ? Float32Array.from(input.subarray(watch * (input.length / N), (watch + 1) * (input.length / N))) : null, experts: [], weights: [] } : null;
    const rawStep: { topkIdx: Int32Array; topkWeight: Float32Array }[] = [];

    for (let l = 0; l < L; l++) {
      const r = layers[l];
      if (r.topkIdx.length < M * k || r.topkWeight.length < M * k || r.scores.length < M * E) throw new DitMoeError(`layer ${l}: routing has fewer than ${M} tokens`, 'recorder');
      const idx = r.topkIdx.subarray(0, M * k);
      const wt = r.topkWeight.subarray(0, M * k);
      const sc = r.scores.subarray(0, M * E);
      for (let n = 0; n < N; n++) {
        const cls = labels[n];
        for (let p = 0; p < T; p++) {
          const m = n * T + p;
          for (let j = 0; j < k; j++) {
            const e = idx[m * k + j];
            if (!(e >= 0 && e < E)) throw new DitMoeError(`layer ${l}: token ${m} chose expert ${e} of ${E}`, 'recorder');
            const g = wt[m * k + j];
            this.classCount[(l * C + cls) * E + e] += 1;
            this.classWeight[(l * C + cls) * E + e] += g;
            this.stepCount[(l * this.S + s) * E + e] += 1;
            this.stepWeight[(l * this.S + s) * E + e] += g;
            this.posCount[(l * T + p) * E + e] += 1;
            this.posWeight[(l * T + p) * E + e] += g;
          }
          // H(scores) of the token
          let h = 0;
          for (let e = 0; e < E; e++) {
            const q = sc[m * E + e];
            if (q > 0) h -= q * Math.log(q);
          }
          this.entropy[l * this.S + s] += h;
        }
      }
      this.balance[l * this.S + s] = balanceLossForward(sc, idx, N, T, E, k, 1, this.opts.seqAux ?? false);
      // did the token's top-k set change since the previous step?
      const prev = this.prev[l];
      if (prev && prev.length === M * k) {
        let changed = 0;
        for (let m = 0; m < M; m++) {
          let same = true;
          for (let j = 0; j < k && same; j++) {
            const e = idx[m * k + j];
            let found = false;
            for (let i = 0; i < k; i++) if (prev[m * k + i] === e) found = true;
            same = found;
          }
          if (!same) changed++;
        }
        this.changes[l * this.S + s] = changed;
        this.compared[l * this.S + s] = M;
      }
      this.prev[l] = Int32Array.from(idx);
      if (w) {
        const ex = new Int32Array(T * k);
        const ew = new Float32Array(T * k);
        for (let p = 0; p < T; p++) {
          const m = watch * T + p;
          const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => wt[m * k + b] - wt[m * k + a] || idx[m * k + a] - idx[m * k + b]);
          order.forEach((j, o) => {
            ex[p * k + o] = idx[m * k + j];
            ew[p * k + o] = wt[m * k + j];
          });
        }
        w.experts.push(ex);
        w.weights.push(ew);
      }
      if (this.opts.keepRaw) rawStep.push({ topkIdx: Int32Array.from(idx), topkWeight: Float32Array.from(wt) });
    }
    if (w) this.watched.push(w);
    if (this.opts.keepRaw) this.raw.push(rawStep);
    this.recorded++;
  }

  /**
   * A model function for the samplers that runs `forward` with a trace and records the
   * conditional rows of each call (see the layouts above).
   */
  wrap(forward: TracedForward, layout: GuidanceLayout, nullClass: number): DiffusionModelFn {
    return (x, shape, t, y) => {
      const N = shape[0];
      let rows = N;
      if (layout === 'doubled') {
        if (N % 2 !== 0) throw new DitMoeError(`a guided call needs an even batch, got ${N}`, 'recorder');
        rows = N / 2;
      }
      const skip = layout === 'separate' && Array.prototype.every.call(y, (v: number) => v === nullClass);
      if (skip) return forward(x, shape, t, y, () => {});
      const found = new Map<string, Float32Array | Int32Array>();
      const out = forward(x, shape, t, y, (name, data) => {
        if (/^block\d+\.(topk_idx|topk_weight|router_scores)$/.test(name)) found.set(name, data);
      });
      const layers: LayerRouting[] = [];
      for (let l = 0; l < this.L; l++) {
        const topkIdx = found.get(`block${l}.topk_idx`);
        const topkWeight = found.get(`block${l}.topk_weight`);
        const scores = found.get(`block${l}.router_scores`);
        if (!(topkIdx instanceof Int32Array) || !(topkWeight instanceof Float32Array) || !(scores instanceof Float32Array)) throw new DitMoeError(`the model reported no routing for layer ${l}`, 'recorder');
        layers.push({ topkIdx, topkWeight, scores });
      }
      this.recordStep(t[0], y.subarray(0, rows), layers, x.subarray(0, (x.length / N) * rows));
      return out;
    };
  }

  /** The statistics of everything recorded, as plain JSON-able numbers. */
  stats(alpha = 1): RoutingStats {
    const { L, E, k, T, C } = this;
    const S = this.recorded;
    const SS = this.S;
    const rows = (a: Float64Array, l: number, n: number, stride: number) => Array.from({ length: n }, (_, r) => Array.from(a.subarray((l * stride + r) * E, (l * stride + r + 1) * E)));
    const layer: LayerStats[] = [];
    for (let l = 0; l < L; l++) {
      const load = new Array<number>(E).fill(0);
      const wsum = new Array<number>(E).fill(0);
      for (let s = 0; s < S; s++)
        for (let e = 0; e < E; e++) {
          load[e] += this.stepCount[(l * SS + s) * E + e];
          wsum[e] += this.stepWeight[(l * SS + s) * E + e];
        }
      const total = load.reduce((a, b) => a + b, 0);
      const loadFraction = load.map((v) => (total > 0 ? v / total : 0));
      let hl = 0;
      for (const q of loadFraction) if (q > 0) hl -= q * Math.log(q);
      const balanceByStep = Array.from(this.balance.subarray(l * SS, l * SS + S));
      const scoreEntropyByStep = Array.from({ length: S }, (_, s) => (this.tokensPerStep[s] > 0 ? this.entropy[l * SS + s] / this.tokensPerStep[s] : 0));
      const pairChangeByStep = Array.from({ length: S }, (_, s) => (this.compared[l * SS + s] > 0 ? this.changes[l * SS + s] / this.compared[l * SS + s] : null));
      let ch = 0;
      let cmp = 0;
      for (let s = 0; s < S; s++) {
        ch += this.changes[l * SS + s];
        cmp += this.compared[l * SS + s];
      }
      let entSum = 0;
      let tokSum = 0;
      for (let s = 0; s < S; s++) {
        entSum += this.entropy[l * SS + s];
        tokSum += this.tokensPerStep[s];
      }
      const balance = S > 0 ? balanceByStep.reduce((a, b) => a + b, 0) / S : 0;
      layer.push({
        layer: l,
        load,
        loadFraction,
        meanWeight: wsum.map((v, e) => (load[e] > 0 ? v / load[e] : 0)),
        loadEntropy: E > 1 ? hl / Math.log(E) : 1,
        balance,
        balanceAux: alpha * balance,
        balanceByStep,
        scoreEntropy: tokSum > 0 ? entSum / tokSum : 0,
        scoreEntropyByStep,
        pairChangeRate: cmp > 0 ? ch / cmp : null,
        pairChangeByStep,
        classExpert: rows(this.classCount, l, C, C),
        stepExpert: rows(this.stepCount, l, S, SS),
        posExpert: rows(this.posCount, l, T, T),
        stepExpertWeight: Array.from({ length: S }, (_, s) => Array.from({ length: E }, (_, e) => {
          const c = this.stepCount[(l * SS + s) * E + e];
          return c > 0 ? this.stepWeight[(l * SS + s) * E + e] / c : 0;
        })),
      });
    }
    const mean = (f: (x: LayerStats) => number) => (L > 0 ? layer.reduce((a, x) => a + f(x), 0) / L : 0);
    const rates = layer.map((x) => x.pairChangeRate).filter((v): v is number => v !== null);
    return {
      layers: L,
      experts: E,
      k,
      gridSize: this.opts.gridSize,
      tokens: T,
      steps: S,
      images: this.imageLabels?.length ?? 0,
      imageLabels: Array.from(this.imageLabels ?? []),
      stepT: Array.from(this.stepT.subarray(0, S)),
      classTokens: Array.from(this.classTokens),
      tokensPerStep: Array.from(this.tokensPerStep.subarray(0, S)),
      alpha,
      summary: {
        balance: mean((x) => x.balance),
        scoreEntropy: mean((x) => x.scoreEntropy),
        maxEntropy: Math.log(E),
        loadEntropy: mean((x) => x.loadEntropy),
        pairChangeRate: rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : null,
      },
      layer,
    };
  }
}
