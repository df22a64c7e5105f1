/**
 * The routing recorder and its pictures (analysis/), on the tiny golden model (2 layers,
 * 4 experts, top-2, 16 tokens, 10 classes + the null class 10).
 *
 * Counts are integers and must match exactly; gate weights, balance values and entropies are
 * recomputed from the same float32 router outputs and summed in float64, so they agree to
 * ~1e-12 — we allow 1e-9 (summation order of a handful of numbers is the only difference).
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { GOLDEN_DIR } from './golden.js';
import { DitMoeError } from '../core/errors.js';
import { refKernels } from '../ref/refKernels.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { routerForward } from '../ref/router.js';
import { balanceLossForward } from '../ref/balanceLoss.js';
import { makeRng } from '../ref/diffusion/rng.js';
import { RoutingRecorder, guidanceLayout, type LayerRouting } from '../analysis/recorder.js';
import { runAnalysis, writeAnalysis, spreadSteps, rawRouting, ANALYSIS_FILES } from '../analysis/report.js';
import { parseSafetensors, asNumbers } from '../io/safetensors.js';
import { loadBars, expertMaps } from '../analysis/plots.js';
import { heatmapGrid } from '../render/charts.js';
import { Svg } from '../render/svg.js';
import { svgPixels, svgToPng, pixelVariance } from '../render/rasterize.js';

const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.safetensors'))), 'tiny.model');
const c = model.config;
const L = c.depth;
const E = c.num_experts;
const K = c.num_experts_per_tok;
const G = c.input_size / c.patch_size;
const T = G * G;
const NULL = c.num_classes;
const PER = c.in_channels * c.input_size * c.input_size;
const TOL = 1e-9;

function randn(n: number, seed: number): Float32Array {
  return makeRng(seed).fillNormal(new Float32Array(n));
}

function recorderFor(steps: number, extra: Partial<ConstructorParameters<typeof RoutingRecorder>[0]> = {}) {
  return new RoutingRecorder({ layers: L, experts: E, k: K, gridSize: G, labels: c.num_classes + 1, steps, ...extra });
}

describe('guidanceLayout', () => {
  it('follows how each sampler calls the model under guidance (the recorder skips the null half or the null pass)', () => {
    for (const s of ['ddpm', 'ddim', 'dpm2s'] as const) expect(guidanceLayout(s, true), s).toBe('doubled');
    for (const s of ['flow', 'heun'] as const) expect(guidanceLayout(s, true), s).toBe('separate');
    // DPM-Solver++ takes either model: the doubled batch on a noise predictor, two passes on a flow
    expect(guidanceLayout('dpm++2m', true)).toBe('doubled');
    expect(guidanceLayout('dpm++3m', true, 'flow')).toBe('separate');
    expect(guidanceLayout('heun', false)).toBe('none');
  });
});

describe('routing recorder', () => {
  it('counts equal a direct recomputation from the router (guided, doubled batch: only the conditional half)', () => {
    const N = 2;
    const labels = Int32Array.from([1, 3]);
    const steps = 3;
    const rec = recorderFor(steps);
    const fn = rec.wrap((x, s, t, y, trace) => model.forward(x, s, t, y, trace), 'doubled', NULL);
    // independent tallies
    const cls = new Float64Array(L * (NULL + 1) * E);
    const stp = new Float64Array(L * steps * E);
    const pos = new Float64Array(L * T * E);
    const stepW = new Float64Array(L * steps * E);
    const bal = new Float64Array(L * steps);
    const ent = new Float64Array(L * steps);
    for (let s = 0; s < steps; s++) {
      const x = randn(N * PER, 10 + s);
      const t = new Float32Array(N).fill(900 - 300 * s);
      // the sampler's doubled call: [x; x], labels [y; null]
      const x2 = new Float32Array(2 * N * PER);
      x2.set(x);
      x2.set(x, N * PER);
      fn(x2, [2 * N, c.in_channels, c.input_size, c.input_size], Float32Array.from([...t, ...t]), Int32Array.from([...labels, NULL, NULL]));
      // recompute: the conditional images alone, routerForward on each layer's MoE input
      const moeIn: Float32Array[] = [];
      model.forward(x, [N, c.in_channels, c.input_size, c.input_size], t, labels, (name, data) => {
        const m = /^block(\d+)\.moe_in$/.exec(name);
        if (m) moeIn[Number(m[1])] = Float32Array.from(data as Float32Array);
      });
      for (let l = 0; l < L; l++) {
        const r = routerForward(refKernels, moeIn[l], model.params.get(`blocks.${l}.moe.gate.weight`), N * T, c.hidden_size, E, K, c.norm_topk_prob);
        for (let n = 0; n < N; n++)
          for (let p = 0; p < T; p++) {
            const m = n * T + p;
            for (let j = 0; j < K; j++) {
              const e = r.topkIdx[m * K + j];
              cls[(l * (NULL + 1) + labels[n]) * E + e]++;
              stp[(l * steps + s) * E + e]++;
              pos[(l * T + p) * E + e]++;
              stepW[(l * steps + s) * E + e] += r.topkWeight[m * K + j];
            }
            for (let e = 0; e < E; e++) {
              const q = r.scores[m * E + e];
              ent[l * steps + s] -= q * Math.log(q);
            }
          }
        bal[l * steps + s] = balanceLossForward(r.scores, r.topkIdx, N, T, E, K, 1, c.seq_aux);
      }
    }
    const st = rec.stats();
    expect(st.steps).toBe(steps);
    expect(st.imageLabels).toEqual([1, 3]);
    for (let l = 0; l < L; l++) {
      const ls = st.layer[l];
      expect(ls.classExpert.flat()).toEqual(Array.from(cls.subarray(l * (NULL + 1) * E, (l + 1) * (NULL + 1) * E)));
      expect(ls.stepExpert.flat()).toEqual(Array.from(stp.subarray(l * steps * E, (l + 1) * steps * E)));
      expect(ls.posExpert.flat()).toEqual(Array.from(pos.subarray(l * T * E, (l + 1) * T * E)));
      for (let s = 0; s < steps; s++) {
        expect(Math.abs(ls.balanceByStep[s] - bal[l * steps + s])).toBeLessThan(TOL);
        expect(Math.abs(ls.scoreEntropyByStep[s] - ent[l * steps + s] / (N * T))).toBeLessThan(TOL);
        for (let e = 0; e < E; e++) {
          const n = stp[(l * steps + s) * E + e];
          expect(Math.abs(ls.stepExpertWeight[s][e] - (n > 0 ? stepW[(l * steps + s) * E + e] / n : 0))).toBeLessThan(TOL);
        }
      }
      // the null class was never recorded
      expect(ls.classExpert[NULL].every((v) => v === 0)).toBe(true);
    }
  });

  it('each row of the class × expert table sums to the recorded tokens × k (ddpm doubled batch and flow separate passes)', () => {
    for (const sampler of ['ddpm', 'flow'] as const) {
      const labels = Int32Array.from([2, 5, 2]);
      const steps = 3;
      const a = runAnalysis(model, { sampler, steps, labels, cfg: 3, guidedChannels: 'all', seed: 1 });
      const st = a.stats;
      expect(st.steps, sampler).toBe(steps); // flow's null passes are not extra steps
      for (let cl = 0; cl <= NULL; cl++) {
        const images = labels.filter((v) => v === cl).length;
        for (let l = 0; l < L; l++) {
          const sum = st.layer[l].classExpert[cl].reduce((x, y) => x + y, 0);
          expect(sum, `${sampler} layer ${l} class ${cl}`).toBe(images * T * steps * K);
        }
      }
      // load shares sum to 1 and the position table covers every token of every step
      for (const ls of st.layer) {
        expect(Math.abs(ls.loadFraction.reduce((x, y) => x + y, 0) - 1)).toBeLessThan(1e-12);
        for (const row of ls.posExpert) expect(row.reduce((x, y) => x + y, 0)).toBe(labels.length * steps * K);
      }
    }
  });

  it('the pair-change rate is 0 when the routing is constant, and counts changes when it is not', () => {
    const N = 1;
    const M = N * T;
    const constant: LayerRouting = { topkIdx: new Int32Array(M * K), topkWeight: new Float32Array(M * K).fill(0.4), scores: new Float32Array(M * E).fill(1 / E) };
    for (let m = 0; m < M; m++) {
      constant.topkIdx[m * K] = m % (E - 1);
      constant.topkIdx[m * K + 1] = E - 1;
    }
    const rec = recorderFor(5);
    for (let s = 0; s < 5; s++) rec.recordStep(500, [4], [constant, constant]);
    for (const ls of rec.stats().layer) {
      expect(ls.pairChangeRate).toBe(0);
      expect(ls.pairChangeByStep).toEqual([null, 0, 0, 0, 0]);
    }
    // half the tokens swap one expert at every step: rate exactly 0.5
    const other: LayerRouting = { ...constant, topkIdx: Int32Array.from(constant.topkIdx) };
    for (let m = 0; m < M; m += 2) other.topkIdx[m * K] = (constant.topkIdx[m * K] + 1) % (E - 1);
    const rec2 = recorderFor(4);
    for (let s = 0; s < 4; s++) rec2.recordStep(500, [4], [s % 2 ? other : constant, constant]);
    const st2 = rec2.stats();
    expect(st2.layer[0].pairChangeRate).toBe(0.5);
    expect(st2.layer[1].pairChangeRate).toBe(0);
    // the same order of experts in a different listing is the same pair
    const swapped: LayerRouting = { ...constant, topkIdx: Int32Array.from(constant.topkIdx) };
    for (let m = 0; m < M; m++) [swapped.topkIdx[m * K], swapped.topkIdx[m * K + 1]] = [constant.topkIdx[m * K + 1], constant.topkIdx[m * K]];
    const rec3 = recorderFor(2);
    rec3.recordStep(500, [4], [constant, constant]);
    rec3.recordStep(400, [4], [swapped, constant]);
    expect(rec3.stats().layer[0].pairChangeRate).toBe(0);
  });

  it('the real model with constant inputs routes constantly (rate 0); separate null passes are not recorded', () => {
    const rec = recorderFor(3);
    const fn = rec.wrap((x, s, t, y, trace) => model.forward(x, s, t, y, trace), 'separate', NULL);
    const x = randn(PER, 7);
    const shape = [1, c.in_channels, c.input_size, c.input_size];
    for (let s = 0; s < 3; s++) {
      fn(x, shape, Float32Array.of(0.5), Int32Array.of(6));
      fn(x, shape, Float32Array.of(0.5), Int32Array.of(NULL)); // the unconditional pass
    }
    const st = rec.stats();
    expect(st.steps).toBe(3);
    for (const ls of st.layer) expect(ls.pairChangeRate).toBe(0);
    expect(st.classTokens[NULL]).toBe(0);
    expect(st.classTokens[6]).toBe(3 * T);
  });

  it('refuses more steps than announced and labels outside the table, with a DitMoeError', () => {
    const r: LayerRouting = { topkIdx: new Int32Array(T * K).map((_, i) => i % K), topkWeight: new Float32Array(T * K), scores: new Float32Array(T * E) };
    const rec = recorderFor(1);
    expect(() => rec.recordStep(1, [NULL + 1], [r, r])).toThrow(DitMoeError);
    rec.recordStep(1, [0], [r, r]);
    expect(() => rec.recordStep(1, [0], [r, r])).toThrow(/more denoising steps than the 1 announced/);
    expect(() => recorderFor(0)).toThrow(DitMoeError);
  });

  it('spreads the expert-map steps over the run, first and last included', () => {
    expect(spreadSteps(20, 4)).toEqual([0, 6, 13, 19]);
    expect(spreadSteps(2, 4)).toEqual([0, 1]);
    expect(spreadSteps(1, 4)).toEqual([0]);
  });
});

describe('raw routing log (keepRaw)', () => {
  it('routing.safetensors holds every step and recounts to the class × expert table', () => {
    const labels = Int32Array.from([3, 0]);
    const a = runAnalysis(model, { sampler: 'ddpm', steps: 2, labels, cfg: 2, guidedChannels: 'all', seed: 5, keepRaw: true });
    const st = parseSafetensors(rawRouting(a.recorder));
    const idx = st.tensors.get('topk_idx')!;
    expect(idx.shape).toEqual([2, L, labels.length * T, K]);
    const v = asNumbers(idx);
    const counts = new Array<number>(L * E).fill(0); // class 3 only: image 0
    for (let s = 0; s < 2; s++) for (let l = 0; l < L; l++) for (let p = 0; p < T; p++) for (let j = 0; j < K; j++) counts[l * E + v[(((s * L + l) * labels.length * T) + p) * K + j]]++;
    for (let l = 0; l < L; l++) expect(a.stats.layer[l].classExpert[3]).toEqual(counts.slice(l * E, (l + 1) * E));
    expect(Array.from(asNumbers(st.tensors.get('labels')!))).toEqual([3, 0]);
  });
});

describe('routing pictures', () => {
  function decode(bytes: Uint8Array): PNG {
    return PNG.sync.read(Buffer.from(bytes));
  }

  it('a blank picture has pixel variance 0 (so the not-blank check can fail)', () => {
    expect(pixelVariance(svgPixels(new Svg(20, 10).toString()).data)).toBe(0);
    expect(pixelVariance(svgPixels(new Svg(20, 10).text(2, 8, 'x').toString()).data)).toBeGreaterThan(0); // the bundled font draws
  });

  it('the figures (SVG) rasterise to their size and are not blank', () => {
    const labels = Int32Array.from([0, 1, 2, 3]);
    const steps = 4;
    const a = runAnalysis(model, { sampler: 'ddim', steps, labels, cfg: 2, guidedChannels: 'all', seed: 3, mapSteps: 3 });
    const st = a.stats;
    const share = (tab: number[][], rows: number[]) => rows.map((r) => tab[r].map((v) => v / (labels.length * T * steps)));
    const figs = {
      heat: heatmapGrid({ title: 't', rowAxis: 'step', rowLabels: ['a', 'b', 'c', 'd'], layers: st.layer.map((l) => share(l.stepExpert, [0, 1, 2, 3])), valueLabel: 'share' }),
      bars: loadBars(st),
      map: expertMaps(a.watched, a.predX0, { C: c.in_channels, H: c.input_size, W: c.input_size }, G, E, K, 'x'),
    };
    for (const [name, svg] of Object.entries(figs)) {
      const png = decode(svgToPng(svg.toString()));
      expect([png.width, png.height], name).toEqual([svg.width, svg.height]);
      expect(pixelVariance(png.data), name).toBeGreaterThan(0);
    }
    // a panel per layer, E columns of at least 8 px each, 4 rows
    expect(figs.heat.width).toBeGreaterThan(L * E * 8);
    // the expert map: one row per watched step, each at least the patch grid tall; columns x_t, x0 and L maps
    expect(a.watched.map((w) => w.step)).toEqual([0, 2, 3]);
    expect(figs.map.height).toBeGreaterThan(3 * G * 2 * K);
    expect(figs.map.width).toBeGreaterThan((2 + L) * G * 2 * K);
    const twice = decode(svgToPng(figs.bars.toString(), 2));
    expect([twice.width, twice.height]).toEqual([2 * figs.bars.width, 2 * figs.bars.height]);
  });

  it('writeAnalysis writes non-blank SVG figures, the samples PNG, stats.json and an index.html that names every picture', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-analysis-'));
    try {
      const a = runAnalysis(model, { sampler: 'flow', steps: 3, labels: Int32Array.from([7, 8]), cfg: 1, guidedChannels: 'all', seed: 0 });
      const { figures, files } = writeAnalysis(dir, a, { model: 'tiny' });
      expect(figures.map((f) => f.file).sort()).toEqual(['expert_load.svg', 'expert_map.svg', 'heatmap_class.svg', 'heatmap_position.svg', 'heatmap_step.svg', 'samples.png']);
      const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
      for (const f of figures) {
        const bytes = fs.readFileSync(path.join(dir, f.file));
        const pixels = f.file.endsWith('.svg') ? svgPixels(bytes.toString('utf8')) : PNG.sync.read(bytes);
        expect(pixels.width * pixels.height).toBeGreaterThan(0);
        expect(pixelVariance(pixels.data), f.file).toBeGreaterThan(0);
        expect(html).toContain(`src="${f.file}"`);
        expect(f.caption.length).toBeGreaterThan(100);
      }
      const stats = JSON.parse(fs.readFileSync(path.join(dir, 'stats.json'), 'utf8'));
      expect(stats.meta).toEqual({ model: 'tiny' });
      expect(stats.layer).toHaveLength(L);
      expect(stats.imageLabels).toEqual([7, 8]);
      expect(files).toHaveLength(8);
      // the CLI guards exactly these names (cli/commands/analyze.ts)
      for (const f of files) expect(ANALYSIS_FILES as readonly string[]).toContain(path.basename(f));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
