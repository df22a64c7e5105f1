/**
 * The explorer's sampling worker: owns the wasm backend (threads where the page is
 * cross-origin isolated) and the model, samples with `sampleImages` (the CLI's own function, so
 * the same request gives the CLI's bytes), and reports every step: the x̂0 of every image, the
 * routing of every image in every layer, each layer's expert load and the class × expert table.
 * Stopping is the page terminating this worker.
 */
import { loadWasmKernels, threadsAvailable, loadModelFromBytes, sampleImages, ablatedModel, RoutingRecorder, SAMPLERS, samplerNeeds, guidancePasses, modelEvaluations, summarizeConfig, type DiTModel, type DiTConfig, type WasmKernels, type Trace, type SamplerName } from '../../dist/index.js';
import type { FromWorker, ModelInfo, SampleSettings, StepRouting, ToWorker } from './protocol.js';

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

let kernels: WasmKernels | null = null;
let model: DiTModel | null = null;
/** What the loaded model predicts: from its file, else noise when it has learned sigma. */
let modelObjective: 'flow' | 'ddpm' = 'flow';

/** The samplers that fit the model: those of its objective, the default first. */
function samplersFor(m: DiTModel, obj: string): SamplerName[] {
  const fits = (s: SamplerName) => {
    const needs = samplerNeeds(s);
    return needs === 'flow' ? obj === 'flow' : needs === 'ddpm' ? obj !== 'flow' && m.config.learn_sigma : obj === 'flow' || m.config.learn_sigma;
  };
  // the page's default first: Euler for a flow, DDIM (deterministic, few steps) for a noise predictor
  const first: SamplerName = obj === 'flow' ? 'flow' : 'ddim';
  return SAMPLERS.filter(fits).sort((a, b) => Number(b === first) - Number(a === first));
}

/** The configuration field's JSON: an object of configuration fields, or nothing. */
function parseGiven(text: string): Partial<DiTConfig> {
  if (!text.trim()) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`the configuration field is not JSON (${message(e)})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('the configuration field must be a JSON object, e.g. {"num_heads": 4}');
  return v as Partial<DiTConfig>;
}

function load(name: string, bytes: ArrayBuffer, config: string): ModelInfo {
  if (!kernels) throw new Error('the wasm backend is not running');
  const f = loadModelFromBytes(new Uint8Array(bytes), name, kernels, parseGiven(config));
  const c = f.config;
  const obj = f.metadata.objective ?? (c.learn_sigma ? 'ddpm' : 'flow');
  const samplers = samplersFor(f.model, obj);
  if (!samplers.length) throw new Error(`${name}: no sampler fits this model (objective ${obj}, learn_sigma ${c.learn_sigma})`);
  model = f.model; // only now: a file that fails leaves the previous model in place
  modelObjective = obj === 'flow' ? 'flow' : 'ddpm';
  return {
    name,
    format: f.format,
    inChannels: c.in_channels,
    size: c.input_size,
    patch: c.patch_size,
    grid: c.input_size / c.patch_size,
    layers: c.depth,
    experts: c.num_experts,
    k: c.num_experts_per_tok,
    shared: c.n_shared_experts,
    classes: c.num_classes,
    params: f.model.params.data.length,
    samplers,
    note: `${summarizeConfig(c)}${f.defaulted.length ? `; no configuration in the file, so the official defaults for ${f.defaulted.join(', ')}` : ''}`,
  };
}

function sample(s: SampleSettings): void {
  if (!model) throw new Error('no model loaded');
  const base = model;
  const c = base.config;
  const m = ablatedModel(base, { off: s.off, k: s.k });
  const N = s.labels.length;
  const L = c.depth;
  const E = c.num_experts;
  const k = s.k;
  const grid = c.input_size / c.patch_size;
  const T = grid * grid;
  const nullClass = c.num_classes;
  const guided = s.cfg !== 1;
  const objective = modelObjective;
  const layout = guided ? guidancePasses({ sampler: s.sampler }, objective) : 'none';
  // a step of the recorder is one model evaluation (Heun makes two per step but the last)
  const recorder = new RoutingRecorder({ layers: L, experts: E, k, gridSize: grid, labels: c.num_classes, steps: modelEvaluations({ sampler: s.sampler, steps: s.steps }), seqAux: c.seq_aux });
  // the routing of the step's conditional call, every image: experts by weight (largest first) and scores
  let routing: StepRouting | null = null;
  const traced = (x: Float32Array, shape: number[], t: Float32Array, y: Int32Array, trace: Trace) => {
    const conditional = !(layout === 'separate' && Array.prototype.every.call(y, (v: number) => v === nullClass));
    const found = new Map<string, Float32Array | Int32Array>();
    const out = m.forward(x, shape, t, y, (name, data, sh) => {
      trace(name, data, sh);
      if (conditional && /^block\d+\.(topk_idx|topk_weight|router_scores)$/.test(name)) found.set(name, data as Float32Array | Int32Array);
    });
    if (conditional) {
      const r: StepRouting = { experts: [], scores: [] };
      for (let l = 0; l < L; l++) {
        const idx = found.get(`block${l}.topk_idx`) as Int32Array;
        const wt = found.get(`block${l}.topk_weight`) as Float32Array;
        const ex = new Int32Array(N * T * k);
        for (let tok = 0; tok < N * T; tok++) {
          const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => wt[tok * k + b] - wt[tok * k + a] || idx[tok * k + a] - idx[tok * k + b]);
          order.forEach((j, o) => (ex[tok * k + o] = idx[tok * k + j]));
        }
        r.experts.push(ex);
        r.scores.push(Float32Array.from((found.get(`block${l}.router_scores`) as Float32Array).subarray(0, N * T * E)));
      }
      routing = r;
    }
    return out;
  };
  const labels = Int32Array.from(s.labels);
  const t0 = performance.now();
  let last = t0;
  let stepMs = 0;
  const samples = sampleImages(m, {
    sampler: s.sampler,
    objective,
    steps: s.steps,
    labels,
    cfg: s.cfg,
    guidedChannels: 'all',
    seed: s.seed,
    modelFn: recorder.wrap(traced, layout, nullClass),
    onStep: (i, n, _x, predX0) => {
      const now = performance.now();
      stepMs = now - last;
      last = now;
      const st = recorder.stats(c.aux_loss_alpha);
      const r = routing!;
      const x0 = Float32Array.from(predX0.subarray(0, N * c.in_channels * c.input_size * c.input_size));
      post({ type: 'step', step: i, steps: n, predX0: x0, msPerStep: stepMs, routing: r, load: st.layer.map((ly) => ly.load), classExpert: st.layer.map((ly) => ly.classExpert) }, [x0.buffer, ...r.experts.map((a) => a.buffer), ...r.scores.map((a) => a.buffer)]);
    },
  });
  const ms = performance.now() - t0;
  const out = Float32Array.from(samples);
  post({ type: 'done', samples: out, ms, msPerStep: ms / s.steps }, [out.buffer]);
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === 'init') {
    try {
      kernels = await loadWasmKernels({ threads: threadsAvailable() ? msg.threads : 1 });
      post({ type: 'ready', threads: kernels.threads, isolated: threadsAvailable() });
    } catch (err) {
      post({ type: 'error', message: message(err), during: 'init' });
    }
  } else if (msg.type === 'load') {
    try {
      post({ type: 'model', info: load(msg.name, msg.bytes, msg.config) });
    } catch (err) {
      post({ type: 'error', message: message(err), during: 'load' });
    }
  } else if (msg.type === 'sample') {
    try {
      sample(msg.settings);
    } catch (err) {
      post({ type: 'error', message: message(err), during: 'sample' });
    }
  }
};

