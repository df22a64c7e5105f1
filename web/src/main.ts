/**
 * The explorer page: controls, the x̂0 of every image while sampling, and the experts at work
 * for the chosen image (patch grid coloured by expert per layer, router scores on hover, each
 * layer's load with on/off switches, the class × expert table). The sampling itself runs in
 * worker.ts; Stop terminates that worker and starts a fresh one on the same model.
 */
import { expertColor } from '../../dist/render/colormap.js';
import { SAMPLER_LABELS, type SamplerName } from '../../dist/index.js';
import type { FromWorker, ModelInfo, SampleSettings, StepRouting, ToWorker } from './protocol.js';

/** Files above this are refused before reading: the weights, their float32 copy and the wasm copy must fit the tab. */
const limits = { maxModelBytes: 1 << 30 };
const DEFAULT_MODEL = new URL('../../models/mnist-s.safetensors', import.meta.url);
/** A minimal module using one v128 instruction (as wasm/backend.ts): validates only where SIMD is supported. */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};
const rgb = (c: readonly number[]) => `rgb(${c[0]},${c[1]},${c[2]})`;

interface State {
  worker: Worker | null;
  threads: number;
  isolated: boolean;
  ready: boolean;
  loaded: boolean; // the worker holds the model
  restarting: boolean; // a fresh worker after stop: keep the controls as they are
  model: ModelInfo | null;
  modelBytes: ArrayBuffer | null;
  modelName: string;
  running: boolean;
  settings: SampleSettings | null;
  predX0: Float32Array | null;
  samples: Float32Array | null;
  routing: StepRouting | null;
  load: number[][];
  classExpert: number[][][];
  step: number;
  steps: number;
  msPerStep: number;
  chosen: number;
  off: Set<string>; // "layer,expert"
  errors: string[];
}

const state: State = { worker: null, threads: 0, isolated: false, ready: false, loaded: false, restarting: false, model: null, modelBytes: null, modelName: '', running: false, settings: null, predX0: null, samples: null, routing: null, load: [], classExpert: [], step: 0, steps: 0, msPerStep: 0, chosen: 0, off: new Set(), errors: [] };

function showError(text: string): void {
  state.errors.push(text);
  const box = $('error');
  box.textContent = text;
  box.hidden = false;
}

function clearError(): void {
  $('error').hidden = true;
}

function send(m: ToWorker, transfer: Transferable[] = []): void {
  state.worker!.postMessage(m, transfer);
}

/** Worker failures since the model last loaded: one is restarted, a second is not (the model itself may be the cause). */
let crashes = 0;

function startWorker(): void {
  state.ready = false;
  state.loaded = false;
  const w = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  state.worker = w;
  w.onmessage = (e: MessageEvent<FromWorker>) => onWorker(e.data);
  w.onerror = (e) => {
    // e.g. out of memory: report it and carry on with a fresh worker on the same model
    w.terminate();
    setRunning(false);
    if (++crashes > 1) {
      showError(`the sampling worker failed again (${e.message || 'no reason given'}); reload the page, or open a smaller model`);
      return;
    }
    showError(`the sampling worker failed (${e.message || 'no reason given'}); it was restarted`);
    state.restarting = state.modelBytes !== null;
    startWorker();
  };
  // ?threads=N asks for N threads (the bench compares thread counts); default every core
  const asked = Number(new URLSearchParams(location.search).get('threads'));
  send({ type: 'init', threads: Number.isInteger(asked) && asked >= 1 && asked <= 64 ? asked : navigator.hardwareConcurrency || 1 });
}

function onWorker(m: FromWorker): void {
  if (m.type === 'ready') {
    state.ready = true;
    state.threads = m.threads;
    state.isolated = m.isolated;
    $('status').textContent = `WebAssembly SIMD backend on ${m.threads} thread${m.threads > 1 ? 's' : ''}`;
    const notice = $('notice');
    notice.hidden = m.isolated;
    notice.textContent = m.isolated ? '' : 'This page is not cross-origin isolated (it needs the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), so there is no shared memory: sampling runs on 1 thread.';
    if (state.modelBytes) sendModel();
  } else if (m.type === 'model') {
    state.model = m.info;
    state.loaded = true;
    crashes = 0;
    $('model-name').textContent = `${m.info.name} (${m.info.format})`;
    $('model-note').textContent = `${m.info.note}; ${(m.info.params / 1e6).toFixed(2)} M parameters`;
    if (!state.restarting) setupControls(m.info);
    state.restarting = false;
    setRunning(false);
  } else if (m.type === 'step') {
    state.step = m.step + 1;
    state.steps = m.steps;
    state.predX0 = m.predX0;
    state.routing = m.routing;
    state.load = m.load;
    state.classExpert = m.classExpert;
    state.msPerStep = m.msPerStep;
    drawProgress();
    drawSamples(m.predX0);
    drawExperts();
  } else if (m.type === 'done') {
    state.samples = m.samples;
    state.msPerStep = m.msPerStep;
    drawSamples(m.samples);
    setRunning(false);
    $('speed').textContent = `${m.msPerStep.toFixed(1)} ms/step on ${state.threads} thread${state.threads > 1 ? 's' : ''} (${(m.ms / 1000).toFixed(2)} s in all)`;
  } else if (m.type === 'error') {
    if (m.during === 'init') {
      $('status').textContent = 'the WebAssembly backend could not start';
      showError(`This browser cannot run the model: ${m.message}`);
      return;
    }
    const hint = m.message.includes('--config') ? ' (here: the configuration field, then open the file again)' : '';
    showError(m.during === 'load' ? `Not loaded: ${m.message}${hint}. The previous model stays.` : `Sampling failed: ${m.message}`);
    if (m.during === 'load' && state.model) {
      $('model-name').textContent = `${state.model.name} (${state.model.format})`;
      // the worker still holds the previous model, unless it was restarting
      state.loaded = !state.restarting;
    }
    state.restarting = false;
    setRunning(false);
  }
}

function sendModel(): void {
  // the worker gets a copy: the page keeps the bytes to restart the worker after a stop
  const copy = state.modelBytes!.slice(0);
  send({ type: 'load', name: state.modelName, bytes: copy, config: $<HTMLInputElement>('config').value }, [copy]);
}

function loadModel(name: string, bytes: ArrayBuffer): void {
  clearError();
  state.modelBytes = bytes;
  state.modelName = name;
  $('model-name').textContent = `${name}: reading…`;
  if (state.ready) sendModel();
}

async function openFile(file: File): Promise<void> {
  if (state.running) stop();
  if (file.size > limits.maxModelBytes) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; this page takes models up to ${(limits.maxModelBytes / 2 ** 20).toFixed(0)} MiB (use the command line for larger ones). The previous model stays.`);
    return;
  }
  if (!/\.(safetensors|pt|pth|ckpt|bin)$/i.test(file.name)) {
    showError(`${file.name} is not a model file (expected .safetensors or .pt). The previous model stays.`);
    return;
  }
  loadModel(file.name, await file.arrayBuffer());
}

function setupControls(info: ModelInfo): void {
  const cls = $<HTMLSelectElement>('class');
  cls.replaceChildren(el('option', { value: 'all', textContent: `all ${info.classes}` }), ...Array.from({ length: info.classes }, (_, c) => el('option', { value: String(c), textContent: String(c) })));
  const sampler = $<HTMLSelectElement>('sampler');
  sampler.replaceChildren(...info.samplers.map((s) => el('option', { value: s, textContent: SAMPLER_LABELS[s as SamplerName] ?? s })));
  const k = $<HTMLSelectElement>('k');
  k.replaceChildren(...Array.from({ length: info.experts }, (_, i) => el('option', { value: String(i + 1), textContent: String(i + 1) + (i + 1 === info.k ? ' (trained)' : ''), selected: i + 1 === info.k })));
  const tl = $<HTMLSelectElement>('table-layer');
  tl.replaceChildren(...Array.from({ length: info.layers }, (_, l) => el('option', { value: String(l), textContent: String(l) })));
  state.off.clear();
  state.routing = null;
  state.load = [];
  state.classExpert = [];
  state.predX0 = state.samples = null;
  $('samples').replaceChildren();
  drawExperts();
}

function readSettings(): SampleSettings {
  const info = state.model!;
  const count = Number($<HTMLInputElement>('count').value);
  const steps = Number($<HTMLInputElement>('steps').value);
  const cfg = Number($<HTMLInputElement>('cfg').value);
  const seed = Number($<HTMLInputElement>('seed').value);
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new Error('count: a whole number from 1 to 64');
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new Error('steps: a whole number from 1 to 1000');
  if (!Number.isFinite(cfg) || cfg < 1) throw new Error('guidance: a number ≥ 1 (1 = none)');
  if (!Number.isInteger(seed) || seed < 0) throw new Error('seed: a whole number ≥ 0');
  const c = $<HTMLSelectElement>('class').value;
  const labels = Array.from({ length: count }, (_, i) => (c === 'all' ? i % info.classes : Number(c)));
  const off = Array.from({ length: info.layers }, (_, l) => Array.from({ length: info.experts }, (_, e) => e).filter((e) => state.off.has(`${l},${e}`)));
  return { labels, sampler: $<HTMLSelectElement>('sampler').value as SamplerName, steps, cfg, seed, k: Number($<HTMLSelectElement>('k').value), off };
}

function generate(): void {
  if (!state.model || !state.loaded || state.running) return;
  let s: SampleSettings;
  try {
    s = readSettings();
  } catch (e) {
    showError((e as Error).message);
    return;
  }
  clearError();
  state.settings = s;
  state.samples = null;
  state.step = 0;
  state.steps = s.steps;
  state.chosen = Math.min(state.chosen, s.labels.length - 1);
  setRunning(true);
  drawProgress();
  send({ type: 'sample', settings: s });
}

function stop(): void {
  state.worker?.terminate();
  state.restarting = state.modelBytes !== null;
  startWorker();
  setRunning(false);
  $('speed').textContent = `stopped at step ${state.step} of ${state.steps}`;
}

function setRunning(on: boolean): void {
  state.running = on;
  $<HTMLButtonElement>('generate').disabled = on || !state.model || !state.loaded;
  $<HTMLButtonElement>('stop').disabled = !on;
}

function drawProgress(): void {
  const p = $<HTMLProgressElement>('progress');
  p.max = state.steps || 1;
  p.value = state.step;
  if (state.running) $('speed').textContent = `step ${state.step}/${state.steps}, ${state.msPerStep.toFixed(1)} ms/step on ${state.threads} thread${state.threads > 1 ? 's' : ''}`;
}

/** One image [C, H, W] → a canvas: grey (C = 1), RGB (C = 3), else the channels side by side ("latent channels"). */
function imageCanvas(data: Float32Array, C: number, H: number, scale: number): HTMLCanvasElement {
  const tiles = C === 1 || C === 3 ? 1 : C;
  const cv = el('canvas', { width: H * tiles, height: H });
  cv.style.width = `${H * tiles * scale}px`;
  cv.style.height = `${H * scale}px`;
  const ctx = cv.getContext('2d')!;
  const img = ctx.createImageData(H * tiles, H);
  const v = (x: number) => Math.max(0, Math.min(255, Math.round(((x + 1) / 2) * 255)));
  for (let y = 0; y < H; y++)
    for (let t = 0; t < tiles; t++)
      for (let x = 0; x < H; x++) {
        const o = 4 * (y * H * tiles + t * H + x);
        const at = (c: number) => data[(c * H + y) * H + x];
        const [r, g, b] = C === 3 ? [v(at(0)), v(at(1)), v(at(2))] : C === 1 ? [v(at(0)), v(at(0)), v(at(0))] : [v(at(t)), v(at(t)), v(at(t))];
        img.data.set([r, g, b, 255], o);
      }
  ctx.putImageData(img, 0, 0);
  return cv;
}

function drawSamples(x: Float32Array): void {
  const info = state.model!;
  const per = info.inChannels * info.size * info.size;
  const n = x.length / per;
  const scale = Math.max(1, Math.round(56 / info.size));
  const box = $('samples');
  box.replaceChildren(
    ...Array.from({ length: n }, (_, i) => {
      const cv = imageCanvas(x.subarray(i * per, (i + 1) * per), info.inChannels, info.size, scale);
      cv.title = `image ${i}, class ${state.settings?.labels[i]}`;
      if (i === state.chosen) cv.classList.add('chosen');
      cv.onclick = () => {
        state.chosen = i;
        drawSamples(x);
        drawExperts();
      };
      return cv;
    }),
  );
  if (info.inChannels !== 1 && info.inChannels !== 3) box.prepend(el('div', { textContent: `latent channels (${info.inChannels} side by side; no decoder here)` }));
}

function drawExperts(): void {
  const info = state.model;
  const maps = $('maps');
  const loads = $('loads');
  if (!info) return;
  const { layers: L, experts: E, grid } = info;
  const r = state.routing;
  const k = state.settings?.k ?? info.k;
  $('experts-when').textContent = r ? `(image ${state.chosen}, step ${state.step} of ${state.steps}: big square 1st choice, small square 2nd)` : '(generate to see them)';
  const cell = Math.max(8, Math.round(112 / grid));
  maps.replaceChildren(
    ...Array.from({ length: L }, (_, l) => {
      const cv = el('canvas', { width: grid * cell, height: grid * cell });
      cv.dataset.layer = String(l);
      const ctx = cv.getContext('2d')!;
      ctx.fillStyle = '#eee';
      ctx.fillRect(0, 0, cv.width, cv.height);
      if (r) {
        const T = grid * grid;
        for (let p = 0; p < T; p++) {
          const base = (state.chosen * T + p) * k;
          const x = (p % grid) * cell;
          const y = Math.floor(p / grid) * cell;
          ctx.fillStyle = rgb(expertColor(r.experts[l][base], E));
          ctx.fillRect(x, y, cell, cell);
          if (k > 1) {
            ctx.fillStyle = rgb(expertColor(r.experts[l][base + 1], E));
            ctx.fillRect(x + cell / 4, y + cell / 4, cell / 2, cell / 2);
          }
        }
      }
      cv.onmousemove = (ev) => hover(Math.floor(ev.offsetY / cell) * grid + Math.floor(ev.offsetX / cell));
      return el('figure', {}, cv, el('figcaption', { textContent: `layer ${l}` }));
    }),
  );
  // loads, with the on/off switches
  loads.replaceChildren(
    ...Array.from({ length: L }, (_, l) => {
      const load = state.load[l] ?? [];
      const total = load.reduce((a, b) => a + b, 0);
      return el(
        'div',
        { className: 'loadrow' },
        el('span', { className: 'lname', textContent: `layer ${l}` }),
        ...Array.from({ length: E }, (_, e) => {
          const share = total > 0 ? load[e] / total : 0;
          const box = el('input', { type: 'checkbox', checked: !state.off.has(`${l},${e}`), title: `expert ${e} of layer ${l}: untick to switch it off` });
          box.dataset.expert = `${l},${e}`;
          box.onchange = () => {
            if (box.checked) state.off.delete(`${l},${e}`);
            else state.off.add(`${l},${e}`);
          };
          const fill = el('div', { className: 'fill' });
          fill.style.height = `${Math.round(share * info.experts * 30)}px`; // an even share (1/E) is 30 px
          fill.style.background = rgb(expertColor(e, E));
          const bar = el('div', { className: 'bar', title: `expert ${e}: ${(share * 100).toFixed(1)}% (${load[e] ?? 0} slots)` }, el('small', { textContent: total > 0 ? `${Math.round(share * 100)}` : '' }), fill, el('div', { textContent: String(e) }), box);
          bar.dataset.load = `${l},${e}`;
          bar.dataset.value = String(load[e] ?? 0);
          return bar;
        }),
      );
    }),
  );
  drawTable();
}

function hover(p: number): void {
  const info = state.model;
  const r = state.routing;
  if (!info || !r || p < 0 || p >= info.grid * info.grid) return;
  const { layers: L, experts: E, grid } = info;
  const T = grid * grid;
  const lines = [`patch ${p} (row ${Math.floor(p / grid)}, column ${p % grid}) of image ${state.chosen}: router scores per expert`, '        ' + Array.from({ length: E }, (_, e) => `e${e}`.padStart(6)).join('')];
  for (let l = 0; l < L; l++) lines.push(`layer ${l} ` + Array.from(r.scores[l].subarray((state.chosen * T + p) * E, (state.chosen * T + p + 1) * E), (s) => s.toFixed(3).padStart(6)).join(''));
  $('hover').textContent = lines.join('\n');
}

function drawTable(): void {
  const info = state.model!;
  const l = Number($<HTMLSelectElement>('table-layer').value || 0);
  const rows = state.classExpert[l];
  if (!rows) {
    $('table').replaceChildren();
    return;
  }
  const E = info.experts;
  const head = el('tr', {}, el('th', { textContent: 'class' }), ...Array.from({ length: E }, (_, e) => el('th', { textContent: `e${e}` })));
  const body = rows.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return el('tr', {}, el('th', { textContent: String(c) }), ...row.map((v) => {
      const share = total > 0 ? v / total : 0;
      const td = el('td', { textContent: total > 0 ? share.toFixed(2) : '' });
      td.style.background = total > 0 ? `rgba(31,119,180,${Math.min(1, share * E / 2)})` : '';
      return td;
    }));
  });
  $('table').replaceChildren(el('table', {}, head, ...body));
}

function init(): void {
  $('generate').onclick = generate;
  $('stop').onclick = stop;
  $('table-layer').onchange = drawTable;
  $<HTMLInputElement>('file').onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void openFile(f);
  };
  document.body.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  document.body.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.body.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const f = e.dataTransfer?.files[0];
    if (f) void openFile(f);
  });
  if (typeof WebAssembly !== 'object' || !WebAssembly.validate(SIMD_PROBE)) {
    $('status').textContent = 'no WebAssembly SIMD';
    showError('This browser has no WebAssembly SIMD (128-bit), which the model needs: try a current Chrome, Firefox or Safari.');
    return;
  }
  startWorker();
  fetch(DEFAULT_MODEL)
    .then((r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.arrayBuffer();
    })
    .then((b) => loadModel('mnist-s.safetensors', b))
    .catch((e) => showError(`cannot load the default model (${(e as Error).message}); open one instead`));
}

/** For tests and the curious: the state, and the samples as bytes. */
(window as unknown as { explorer: unknown }).explorer = {
  state,
  limits,
  generate,
  stop,
  samplesHex: () => (state.samples ? Array.from(new Uint8Array(state.samples.buffer, state.samples.byteOffset, state.samples.byteLength), (b) => b.toString(16).padStart(2, '0')).join('') : null),
};

init();
