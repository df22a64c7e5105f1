/**
 * The charts of the project, as SVG (svg.ts; rasterised by rasterize.ts where a PNG is wanted):
 *   lineChart    series over a shared x axis (a training run's loss and its moving average)
 *   heatmapGrid  one heatmap per panel (rows × columns, e.g. class × expert per layer), laid out
 *                as a grid like the paper's figures, one viridis scale with its colour bar
 *   barPanels    one bar chart per panel (e.g. each expert's share per layer) with a dashed
 *                reference line (the even share)
 */
import { Svg, BLACK, GREY, LIGHT, textWidth, fmt, niceTicks } from './svg.js';
import { viridis, VIRIDIS_STOPS, type RGB } from './colormap.js';

const PAD = 12;
const TITLE = 16; // px: figure titles
const LABEL = 12; // px: axis captions, panel titles
const TICK = 10.5; // px: tick labels

/** Columns of a grid of n panels: about 1.5 times wider than tall, rows as full as they can be (4 → 2 × 2). */
function gridColumns(n: number, maxCols = 8): number {
  const cols = Math.max(1, Math.min(n, maxCols, Math.ceil(Math.sqrt(n * 1.5))));
  return Math.ceil(n / Math.ceil(n / cols));
}

export interface Series {
  x: number[];
  y: number[];
  color: RGB;
  label: string;
  width?: number; // stroke width, px
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
}

/** Series over a shared x axis, y from the data's range (non-finite points leave a gap), with a legend. */
export function lineChart(spec: LineChartSpec): Svg {
  const width = spec.width ?? 720;
  const height = spec.height ?? 400;
  const xs = spec.series.flatMap((s) => s.x);
  const ys = spec.series.flatMap((s) => s.y).filter(Number.isFinite);
  // reduce, not Math.min(...xs): a run of 10⁵ steps would overflow the argument stack
  const x0 = xs.reduce((a, b) => Math.min(a, b), 0);
  const x1 = xs.reduce((a, b) => Math.max(a, b), 1);
  let y0 = ys.length ? ys.reduce((a, b) => Math.min(a, b)) : 0;
  let y1 = ys.length ? ys.reduce((a, b) => Math.max(a, b)) : 1;
  if (y1 - y0 < 1e-12) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  let yt = niceTicks(y0, y1, 5);
  if (yt.length > 1) {
    // the y axis from a round value below the data to one above it
    const step = yt[1] - yt[0];
    [y0, y1] = [Math.floor(y0 / step + 1e-9) * step, Math.ceil(y1 / step - 1e-9) * step];
    yt = niceTicks(y0, y1, 5);
  }
  const xt = niceTicks(x0, x1, 6);
  const left = PAD + LABEL + 6 + Math.max(...yt.map((v) => textWidth(fmt(v, 3), TICK))) + 8;
  const [top, right, bottom] = [PAD + TITLE + 14, PAD + 8, PAD + LABEL + TICK + 16];
  const pw = width - left - right;
  const ph = height - top - bottom;
  const px = (x: number) => left + ((x - x0) / (x1 - x0 || 1)) * pw;
  const py = (y: number) => top + ph - ((y - y0) / (y1 - y0)) * ph;
  const svg = new Svg(width, height);
  svg.text(PAD, PAD + TITLE, spec.title, { size: TITLE, bold: true });
  for (const v of yt) {
    svg.line(left, py(v), left + pw, py(v), LIGHT);
    svg.text(left - 6, py(v), fmt(v, 3), { size: TICK, anchor: 'end', fill: GREY, middle: true });
  }
  for (const v of xt) {
    if (v < x0 || v > x1) continue;
    svg.line(px(v), top, px(v), top + ph, LIGHT);
    svg.text(px(v), top + ph + TICK + 4, fmt(v), { size: TICK, anchor: 'middle', fill: GREY });
  }
  svg.rect(left, top, pw, ph, 'none', GREY);
  svg.text(left + pw / 2, height - PAD, spec.xLabel, { size: LABEL, anchor: 'middle' });
  svg.text(PAD + LABEL, top + ph / 2, spec.yLabel, { size: LABEL, anchor: 'middle', rotate: -90 });
  for (const s of spec.series) {
    // one polyline per run of finite points
    let run: [number, number][] = [];
    const flush = () => {
      svg.polyline(run, s.color, s.width ?? 1.5);
      run = [];
    };
    for (let i = 0; i < s.x.length; i++) {
      if (Number.isFinite(s.y[i])) run.push([px(s.x[i]), py(s.y[i])]);
      else flush();
    }
    flush();
  }
  // legend, top right inside the plot
  const lw = Math.max(...spec.series.map((s) => textWidth(s.label, TICK))) + 34;
  const lx = left + pw - lw - 8;
  svg.rect(lx, top + 8, lw, spec.series.length * 16 + 8, 'rgba(255,255,255,0.85)', LIGHT);
  spec.series.forEach((s, i) => {
    const ly = top + 20 + i * 16;
    svg.line(lx + 8, ly, lx + 26, ly, s.color, (s.width ?? 1.5) + 0.5);
    svg.text(lx + 30, ly, s.label, { size: TICK, middle: true });
  });
  return svg;
}

export interface HeatmapSpec {
  title: string;
  rowAxis: string; // e.g. "class", "step", "patch"
  rowLabels: string[]; // one per row (drawn where there is room)
  colAxis?: string; // default "expert"
  panelTitle?: (i: number) => string; // default "layer i"
  layers: number[][][]; // [panels][rows][columns] values
  valueLabel: string; // what the colour means
  vmax?: number; // top of the colour scale (default: the largest value; 0 is the bottom)
}

/** A vertical viridis colour bar from 0 to vmax, ticks beside it and its caption along it. */
function colorBar(svg: Svg, x: number, y: number, h: number, vmax: number, caption: string): void {
  const w = 14;
  const id = 'viridis';
  const stops = VIRIDIS_STOPS.map((c, i) => `<stop offset="${i / (VIRIDIS_STOPS.length - 1)}" stop-color="#${c}"/>`).join('');
  svg.raw(`<defs><linearGradient id="${id}" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient></defs>`);
  svg.rect(x, y, w, h, `url(#${id})`, GREY);
  const ticks = niceTicks(0, vmax, 4).filter((v) => v <= vmax * (1 + 1e-9));
  let tw = 0;
  for (const v of ticks) {
    const ty = y + h - (v / vmax) * h;
    svg.line(x + w, ty, x + w + 4, ty, BLACK);
    svg.text(x + w + 7, ty, fmt(v, 3), { size: TICK, middle: true });
    tw = Math.max(tw, textWidth(fmt(v, 3), TICK));
  }
  svg.text(x + w + 7 + tw + 8 + LABEL * 0.4, y + h / 2, caption, { size: LABEL, anchor: 'middle', rotate: 90 });
}

/** The width a colour bar needs: the bar, its tick labels and its caption. */
function colorBarWidth(vmax: number): number {
  return 14 + 7 + Math.max(...niceTicks(0, vmax, 4).map((v) => textWidth(fmt(v, 3), TICK))) + 8 + LABEL + 4;
}

/** One heatmap per panel (rows down, columns across), one colour scale for the figure. */
export function heatmapGrid(spec: HeatmapSpec): Svg {
  const L = spec.layers.length;
  const rows = spec.rowLabels.length;
  const E = L > 0 && rows > 0 ? spec.layers[0][0].length : 1;
  let vmax = spec.vmax ?? 0;
  if (spec.vmax === undefined) for (const m of spec.layers) for (const row of m) for (const v of row) if (v > vmax) vmax = v;
  if (!(vmax > 0)) vmax = 1;
  const panelTitle = spec.panelTitle ?? ((i: number) => `layer ${i}`);

  const cellW = Math.max(8, Math.min(28, Math.floor(200 / E)));
  const cellH = rows <= 12 ? 16 : rows <= 40 ? 10 : Math.max(2, Math.floor(320 / rows));
  const labelW = Math.max(...spec.rowLabels.map((s) => textWidth(s, TICK)), 8) + 6;
  const tickEvery = Math.max(1, Math.ceil((TICK + 2) / cellH));
  const colEvery = Math.max(1, Math.ceil((textWidth(String(E - 1), TICK) + 4) / cellW));
  const mapW = E * cellW;
  const mapH = rows * cellH;
  const panelW = labelW + mapW + 2 * PAD;
  const panelH = LABEL + 8 + mapH + 6 + TICK + PAD;
  const cols = gridColumns(L);
  const gridRows = Math.ceil(L / cols);
  const top = PAD + TITLE + 16;
  const left = PAD + LABEL + 8; // the rotated row-axis caption
  const barX = left + cols * panelW + PAD;
  const barH = Math.max(120, Math.min(300, gridRows * panelH - LABEL - 2 * PAD));
  const width = Math.max(barX + colorBarWidth(vmax) + PAD, textWidth(spec.title, TITLE) + 2 * PAD);
  const height = Math.max(top + gridRows * panelH + LABEL + 2 * PAD, top + LABEL + 8 + barH + 2 * PAD, top + textWidth(spec.rowAxis, LABEL) + 2 * PAD);
  const svg = new Svg(width, height);
  svg.text(PAD, PAD + TITLE, spec.title, { size: TITLE, bold: true });
  for (let l = 0; l < L; l++) {
    const px = left + (l % cols) * panelW;
    const py = top + Math.floor(l / cols) * panelH;
    const mx = px + labelW;
    const my = py + LABEL + 8;
    svg.text(mx + mapW / 2, py + LABEL, panelTitle(l), { size: LABEL, anchor: 'middle', bold: true });
    svg.crisp();
    for (let i = 0; i < rows; i++) for (let e = 0; e < E; e++) svg.rect(mx + e * cellW, my + i * cellH, cellW, cellH, viridis(spec.layers[l][i][e] / vmax));
    svg.end();
    svg.rect(mx, my, mapW, mapH, 'none', GREY);
    for (let i = 0; i < rows; i += tickEvery) svg.text(mx - 4, my + (i + 0.5) * cellH, spec.rowLabels[i], { size: TICK, anchor: 'end', fill: GREY, middle: true });
    for (let e = 0; e < E; e += colEvery) svg.text(mx + (e + 0.5) * cellW, my + mapH + TICK + 3, String(e), { size: TICK, anchor: 'middle', fill: GREY });
  }
  const gridBottom = top + gridRows * panelH;
  svg.text(left + (cols * panelW) / 2, gridBottom + LABEL, spec.colAxis ?? 'expert', { size: LABEL, anchor: 'middle' });
  svg.text(PAD + LABEL, top + Math.max(gridRows * panelH, textWidth(spec.rowAxis, LABEL)) / 2, spec.rowAxis, { size: LABEL, anchor: 'middle', rotate: -90 });
  colorBar(svg, barX, top + LABEL + 8, barH, vmax, spec.valueLabel);
  return svg;
}

export interface BarPanelsSpec {
  title: string;
  panels: { title: string; values: number[] }[];
  color: (i: number, n: number) => RGB;
  yMax: number; // top of every panel's axis
  yFormat: (v: number) => string; // tick labels
  reference?: number; // a dashed line across every panel
  caption: string; // under the grid
}

/** One bar chart per panel, on one y scale, with an optional dashed reference line. */
export function barPanels(spec: BarPanelsSpec): Svg {
  const L = spec.panels.length;
  const E = L ? spec.panels[0].values.length : 1;
  const barW = Math.max(8, Math.min(24, Math.floor(200 / E)));
  const plotH = 130;
  const ticks = niceTicks(0, spec.yMax, 4).filter((v) => v <= spec.yMax * (1 + 1e-9));
  const axisW = Math.max(...ticks.map((v) => textWidth(spec.yFormat(v), TICK))) + 8;
  const panelW = axisW + E * barW + 2 * PAD;
  const panelH = LABEL + 8 + plotH + 6 + TICK + PAD;
  const cols = gridColumns(L);
  const gridRows = Math.ceil(L / cols);
  const top = PAD + TITLE + 16;
  const width = Math.max(PAD + cols * panelW + PAD, textWidth(spec.title, TITLE) + 2 * PAD, textWidth(spec.caption, TICK + 0.5) + 2 * PAD);
  const svg = new Svg(width, top + gridRows * panelH + LABEL + 2 * PAD);
  svg.text(PAD, PAD + TITLE, spec.title, { size: TITLE, bold: true });
  const colEvery = Math.max(1, Math.ceil((textWidth(String(E - 1), TICK) + 4) / barW));
  spec.panels.forEach((p, l) => {
    const px = PAD + (l % cols) * panelW;
    const py = top + Math.floor(l / cols) * panelH;
    const ax = px + axisW;
    const ay = py + LABEL + 8;
    const base = ay + plotH;
    svg.text(ax + (E * barW) / 2, py + LABEL, p.title, { size: LABEL, anchor: 'middle', bold: true });
    for (const v of ticks) {
      const ty = base - (v / spec.yMax) * plotH;
      svg.line(ax, ty, ax + E * barW, ty, LIGHT);
      svg.text(ax - 4, ty, spec.yFormat(v), { size: TICK, anchor: 'end', fill: GREY, middle: true });
    }
    svg.crisp();
    p.values.forEach((v, e) => {
      const h = Math.max(0, Math.min(1, v / spec.yMax)) * plotH;
      svg.rect(ax + e * barW + 1, base - h, barW - 2, h, spec.color(e, E));
    });
    svg.end();
    if (spec.reference !== undefined) {
      const ry = base - (spec.reference / spec.yMax) * plotH;
      svg.line(ax, ry, ax + E * barW, ry, BLACK, 1.2, '4 3');
    }
    svg.line(ax, base, ax + E * barW, base, BLACK);
    svg.line(ax, ay, ax, base, BLACK);
    for (let e = 0; e < E; e += colEvery) svg.text(ax + (e + 0.5) * barW, base + TICK + 3, String(e), { size: TICK, anchor: 'middle', fill: GREY });
  });
  svg.text(PAD, top + gridRows * panelH + LABEL, spec.caption, { size: TICK + 0.5, fill: GREY });
  return svg;
}
