/**
 * The routing analysis end to end: sample images while a RoutingRecorder watches the router,
 * then write the pictures, `stats.json` and an `index.html` that shows them with captions.
 *   runAnalysis(model, request)     → recorder statistics, the watched image's frames, samples
 *   writeAnalysis(dir, analysis)    → the files, named in the returned list
 */
import * as path from 'node:path';
import { dims } from '../ref/config.js';
import type { DiTModel } from '../ref/model.js';
import { sampleImages, modelEvaluations, guidancePasses, predictionOf, type SampleRequest } from '../ref/diffusion/sampling.js';
import { writeFileAtomic } from '../node/files.js';
import { serializeSafetensors, f32, i64 } from '../io/safetensors.js';
import { gridPng } from '../render/images.js';
import { RoutingRecorder, type RoutingStats, type WatchedStep } from './recorder.js';
import { Svg, fmt } from '../render/svg.js';
import { heatmapGrid } from '../render/charts.js';
import { loadBars, expertMaps } from './plots.js';

export interface AnalysisRequest extends Omit<SampleRequest, 'modelFn' | 'onStep'> {
  watchImage?: number; // the image of the expert-map picture (default 0)
  mapSteps?: number; // how many steps it shows (default 4, evenly spread, first and last included)
  keepRaw?: boolean;
  onStep?: (i: number, n: number) => void;
}

export interface Analysis {
  stats: RoutingStats;
  recorder: RoutingRecorder;
  watched: readonly WatchedStep[];
  predX0: Map<number, Float32Array>; // step → the watched image's x̂0 [C, H, W]
  samples: Float32Array; // [N, C, H, W]
  request: AnalysisRequest;
  model: DiTModel;
}

/** `count` step indices spread evenly over 0..S−1 (first and last included). */
export function spreadSteps(S: number, count: number): number[] {
  if (S <= 0) return [];
  const n = Math.max(1, Math.min(S, count));
  if (n === 1) return [0];
  return [...new Set(Array.from({ length: n }, (_, i) => Math.round((i * (S - 1)) / (n - 1))))];
}

/** Samples with the request's settings and records the routing of the conditional images. */
export function runAnalysis(model: DiTModel, req: AnalysisRequest): Analysis {
  const c = model.config;
  const d = dims(c);
  const N = req.labels.length;
  const watchImage = Math.min(req.watchImage ?? 0, N - 1);
  const mapSteps = spreadSteps(req.steps, req.mapSteps ?? 4);
  // the recorder counts model evaluations (Heun makes two per step)
  const evaluations = modelEvaluations(req);
  const rec = new RoutingRecorder({ layers: c.depth, experts: c.num_experts, k: c.num_experts_per_tok, gridSize: d.gridSize, labels: d.numLabels, steps: evaluations, seqAux: c.seq_aux, keepRaw: req.keepRaw, watch: { image: watchImage, steps: mapSteps } });
  const layout = req.cfg === 1 ? 'none' : guidancePasses(req, req.objective ?? predictionOf(c));
  const per = c.in_channels * c.input_size * c.input_size;
  const predX0 = new Map<number, Float32Array>();
  const samples = sampleImages(model, {
    ...req,
    modelFn: rec.wrap((x, s, t, y, trace) => model.forward(x, s, t, y, trace), layout, c.num_classes),
    onStep: (i, n, _x, px0) => {
      if (mapSteps.includes(i)) predX0.set(i, Float32Array.from(px0.subarray(watchImage * per, (watchImage + 1) * per)));
      req.onStep?.(i, n);
    },
  });
  return { stats: rec.stats(c.aux_loss_alpha), recorder: rec, watched: rec.watched, predX0, samples, request: req, model };
}

/** Rows of a layer's table divided by the tokens behind each row: the share of tokens choosing each expert. */
function shares(table: number[][], tokens: ArrayLike<number>, keep: number[]): number[][] {
  return keep.map((i) => table[i].map((v) => (tokens[i] > 0 ? v / tokens[i] : 0)));
}

/** Every file writeAnalysis may write into its folder (the CLI refuses a run whose inputs are among them). */
export const ANALYSIS_FILES = ['heatmap_class.svg', 'heatmap_step.svg', 'heatmap_position.svg', 'expert_load.svg', 'expert_map.svg', 'samples.png', 'stats.json', 'index.html', 'routing.safetensors'] as const;

export interface FigureFile {
  file: string; // name inside the output folder
  title: string;
  caption: string;
}

/** Writes the figures (SVG; the samples PNG), stats.json and index.html into `dir`; returns the figures (for the page) and every file written. */
export function writeAnalysis(dir: string, a: Analysis, meta: Record<string, string | number> = {}): { figures: FigureFile[]; files: string[] } {
  const s = a.stats;
  const c = a.model.config;
  const E = s.experts;
  const k = s.k;
  const files: string[] = [];
  const write = (name: string, bytes: Uint8Array | string) => {
    const f = path.join(dir, name);
    writeFileAtomic(f, bytes);
    files.push(f);
  };
  const classes = s.classTokens.map((v, i) => (v > 0 ? i : -1)).filter((i) => i >= 0);
  const steps = Array.from({ length: s.steps }, (_, i) => i);
  const positions = Array.from({ length: s.tokens }, (_, i) => i);
  const valueLabel = 'share of tokens';
  const even = fmt(k / E, 3);
  const uniform = `An even router would colour every cell ${even} (= k/E = ${k}/${E}); rows sum to ${k}, since each token picks ${k} expert${k > 1 ? 's' : ''}.`;
  const figures: FigureFile[] = [];
  const fig = (file: string, title: string, caption: string, picture: Svg | Uint8Array) => {
    write(file, picture instanceof Svg ? picture.toString() : picture);
    figures.push({ file, title, caption });
  };

  fig(
    'heatmap_class.svg',
    'Experts by class',
    `Each panel is one MoE layer; a row is a class label, a column an expert, and the colour is the share of that class's image tokens (over every denoising step) that the router sent to the expert. A column that lights up for some classes and not others is an expert that specialises in content; flat columns mean the choice does not depend on the class. ${uniform}`,
    heatmapGrid({ title: 'Expert choice by class', rowAxis: 'class', rowLabels: classes.map(String), layers: s.layer.map((l) => shares(l.classExpert, s.classTokens, classes)), valueLabel }),
  );
  fig(
    'heatmap_step.svg',
    'Experts by denoising step',
    `Rows are the denoising steps from the first (pure noise, at the top, labelled with the model's timestep input t) to the last (the finished image, at the bottom); the colour is the share of all tokens at that step routed to each expert. Colour that shifts from one expert to another down a panel means the router hands early, noisy steps and late, detailed steps to different experts — the timestep specialisation the paper reports. ${uniform}`,
    heatmapGrid({ title: 'Expert choice by denoising step', rowAxis: 'step (first at top)', rowLabels: steps.map((i) => `t=${fmt(s.stepT[i], 3)}`), layers: s.layer.map((l) => shares(l.stepExpert, s.tokensPerStep, steps)), valueLabel }),
  );
  const posTokens = new Array<number>(s.tokens).fill(s.tokensPerStep.reduce((x, y) => x + y, 0) / s.tokens);
  fig(
    'heatmap_position.svg',
    'Experts by patch position',
    `Rows are the ${s.tokens} patch positions of the ${s.gridSize}×${s.gridSize} patch grid, row by row from the top-left corner (labelled row,column); the colour is the share of tokens at that position, over all images and steps, routed to each expert. Stripes repeating every ${s.gridSize} rows would show that experts care about where a patch is (borders, centre) rather than what it shows. ${uniform}`,
    heatmapGrid({ title: 'Expert choice by patch position', rowAxis: 'patch (row,column)', rowLabels: positions.map((p) => `${Math.floor(p / s.gridSize)},${p % s.gridSize}`), layers: s.layer.map((l) => shares(l.posExpert, posTokens, positions)), valueLabel }),
  );
  fig(
    'expert_load.svg',
    'Expert load',
    `For each layer, the share of all routing slots (tokens × ${k}) that each expert received, over every image and step; the dashed line is the even share 1/${E}. Bars far above the line are experts the router overloads — what the balance loss (its value per layer is in the table below: 1 is perfectly even, ${E} is one expert taking everything) pushes against in training.`,
    loadBars(s),
  );
  const ref = { C: c.in_channels, H: c.input_size, W: c.input_size };
  const watchImage = Math.min(a.request.watchImage ?? 0, s.images - 1);
  fig(
    'expert_map.svg',
    'One image, patch by patch',
    `Image ${watchImage} (class ${s.imageLabels[watchImage]}) at ${a.watched.length} of the ${s.steps} steps, from noise (top) to the finished sample (bottom). Left: the model's input x_t at that step and its prediction of the clean image x0${c.in_channels === 1 || c.in_channels === 3 ? '' : ' (a latent: its first channels shown as colour, not a decoded image)'}. Then one patch grid per layer: each patch is split into ${k} stripe${k > 1 ? 's' : ''} coloured by the expert${k > 1 ? 's' : ''} it was sent to${k > 1 ? ', the largest gate weight on the left' : ''}. Regions of one colour are patches the router treats alike; watch how they follow the image's content as it emerges.`,
    expertMaps(a.watched, a.predX0, ref, s.gridSize, E, k, `image ${watchImage}, class ${s.imageLabels[watchImage]}`),
  );
  fig(
    'samples.png',
    'The samples',
    `The ${s.images} finished samples whose routing every picture above describes, in order left to right and top to bottom (classes ${s.imageLabels.join(', ')}). Only these conditional images were recorded: the unconditional pass that classifier-free guidance adds at every step is left out of all the counts.`,
    gridPng({ data: a.samples, N: s.images, C: ref.C, H: ref.H, W: ref.W }, undefined, Math.max(1, Math.round(64 / ref.H))),
  );
  if (a.recorder.raw.length) write('routing.safetensors', rawRouting(a.recorder));
  write('stats.json', JSON.stringify({ meta, ...s }, null, 1) + '\n');
  write('index.html', analysisPage(s, figures, meta, a.recorder.raw.length > 0));
  return { figures, files };
}

/**
 * The raw log kept with `keepRaw`, as safetensors:
 *   topk_idx [S, L, N·T, k] (I64, sorted ascending per token), topk_weight [S, L, N·T, k] (F32),
 *   step_t [S] (F32, the model's timestep input), labels [N] (I64).
 */
export function rawRouting(rec: RoutingRecorder): Uint8Array {
  const st = rec.stats();
  const S = rec.raw.length;
  const rows = S ? rec.raw[0][0].topkIdx.length : 0;
  const idx = new Int32Array(S * rec.L * rows);
  const wt = new Float32Array(S * rec.L * rows);
  rec.raw.forEach((step, s) =>
    step.forEach((r, l) => {
      idx.set(r.topkIdx, (s * rec.L + l) * rows);
      wt.set(r.topkWeight, (s * rec.L + l) * rows);
    }),
  );
  const shape = [S, rec.L, rows / rec.k, rec.k];
  return serializeSafetensors(
    [
      ['topk_idx', i64(shape, idx)],
      ['topk_weight', f32(shape, wt)],
      ['step_t', f32([S], Float32Array.from(st.stepT))],
      ['labels', i64([st.images], st.imageLabels)],
    ],
    { kind: 'routing', experts: String(rec.E), tokens_per_image: String(rec.T) },
  );
}

function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** The report page: the figures with their captions and a per-layer table; no scripts, no outside resources. */
export function analysisPage(s: RoutingStats, figures: readonly FigureFile[], meta: Record<string, string | number>, hasRaw = false): string {
  const rows = s.layer
    .map((l) => `<tr><td>${l.layer}</td><td>${fmt(l.balance, 3)}</td><td>${fmt(l.balanceAux, 3)}</td><td>${fmt(l.loadEntropy, 3)}</td><td>${fmt(l.scoreEntropy, 3)}</td><td>${l.pairChangeRate === null ? '–' : fmt(100 * l.pairChangeRate, 1) + '%'}</td></tr>`)
    .join('\n');
  const metaRows = Object.entries(meta)
    .map(([key, v]) => `<tr><th>${esc(key)}</th><td>${esc(v)}</td></tr>`)
    .join('\n');
  const figs = figures.map((f) => `<figure>\n<h2>${esc(f.title)}</h2>\n<img src="${esc(f.file)}" alt="${esc(f.title)}">\n<figcaption>${esc(f.caption)}</figcaption>\n</figure>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DiT-MoE routing analysis</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
figure { margin: 2rem 0; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { max-width: 50rem; color: #444; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: right; }
th { background: #f4f4f4; }
</style>
</head>
<body>
<h1>DiT-MoE routing analysis</h1>
<p>What the routers of this model did while sampling ${s.images} image${s.images === 1 ? '' : 's'} over ${s.steps} denoising steps: ${s.layers} MoE layer${s.layers === 1 ? '' : 's'}, ${s.experts} experts, each token sent to ${s.k}. Only the conditional images are counted (the unconditional pass of classifier-free guidance is left out). The numbers behind every picture are in <a href="stats.json">stats.json</a>${hasRaw ? '; every step\'s chosen experts and weights per token are in <a href="routing.safetensors">routing.safetensors</a>' : ''}.</p>
<table>
${metaRows}
</table>
<h2>Per layer</h2>
<p>Balance: Σ<sub>i</sub> P<sub>i</sub>·f<sub>i</sub> of the routing (P<sub>i</sub> the mean router score of expert i, f<sub>i</sub> = E × its share of the slots), averaged over steps: 1 is a perfectly even load and ${s.experts} is one expert taking everything; the training loss term is alpha (${fmt(s.alpha, 3)}) times it. Load entropy: the entropy of the load shares divided by ln E (1 = even). Router entropy: the mean entropy of each token's softmax over experts, in nats (at most ln E = ${fmt(s.summary.maxEntropy, 3)}; low means confident choices). Top-k change: how often a token's set of chosen experts differs from the step before.</p>
<table>
<tr><th>layer</th><th>balance</th><th>aux loss</th><th>load entropy</th><th>router entropy</th><th>top-k change</th></tr>
${rows}
</table>
${figs}
</body>
</html>
`;
}
