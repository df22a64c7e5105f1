/**
 * The figures of the routing analysis, drawn into a Raster (raster.ts) and written as PNG:
 *   heatmapGrid   one heatmap per layer (rows: class, step or patch position; columns: experts),
 *                 laid out as a grid of layers like the paper's figures, one viridis colour
 *                 scale for the whole figure with its colour bar
 *   loadBars      per layer, the share of routing slots each expert received, with the even
 *                 share 1/E dashed
 *   expertMaps    for one image at a few steps: the image being denoised (and the model's x̂0)
 *                 next to its patch grid coloured by the chosen experts, one grid per layer
 * Every function returns a Raster; `.png()` gives the file bytes.
 */
import { imageColors } from '../render/pixels.js';
import { Raster, BLACK, GREY, LIGHT, WHITE } from './raster.js';
import { viridis, expertColor, type RGB } from '../render/colormap.js';
import { textWidth, LINE_H } from './font.js';
import type { RoutingStats, WatchedStep } from './recorder.js';

export interface HeatmapSpec {
  title: string;
  rowAxis: string; // e.g. "class", "step", "patch"
  rowLabels: string[]; // one per row (drawn where there is room)
  layers: number[][][]; // [L][rows][E] values
  valueLabel: string; // what the colour means
  vmax?: number; // top of the colour scale (default: the largest value; 0 is the bottom)
}

const PAD = 8;

/** Columns of a grid of n panels: about 1.5 times wider than tall. */
function gridColumns(n: number, maxCols = 8): number {
  return Math.max(1, Math.min(n, maxCols, Math.ceil(Math.sqrt(n * 1.5))));
}

/** A short number for ticks: 0.25, 12%, 1.2e-3. */
export function fmt(v: number, digits = 2): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000 || a < 1e-3) return v.toExponential(1);
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toFixed(a >= 10 ? 1 : digits)));
}

/** Vertical viridis colour bar with ticks at 0, vmax/2, vmax and a caption along it. */
function colorBar(r: Raster, x: number, y: number, h: number, vmax: number, caption: string): void {
  const w = 14;
  for (let i = 0; i < h; i++) r.fillRect(x, y + h - 1 - i, w, 1, viridis(i / Math.max(1, h - 1)));
  r.strokeRect(x - 1, y - 1, w + 2, h + 2, GREY);
  for (const f of [0, 0.5, 1]) {
    const ty = Math.round(y + h - 1 - f * (h - 1));
    r.hline(x + w + 1, x + w + 3, ty, BLACK);
    r.text(x + w + 6, ty - 3, fmt(f * vmax));
  }
  r.textUp(x + w + 6 + 40, y + h / 2, caption, BLACK);
}

/** The three heatmap families: one panel per layer, experts across, rows down. */
export function heatmapGrid(spec: HeatmapSpec): Raster {
  const L = spec.layers.length;
  const rows = spec.rowLabels.length;
  const E = L > 0 && rows > 0 ? spec.layers[0][0].length : 1;
  let vmax = spec.vmax ?? 0;
  if (spec.vmax === undefined) for (const m of spec.layers) for (const row of m) for (const v of row) if (v > vmax) vmax = v;
  if (!(vmax > 0)) vmax = 1;

  const cellW = Math.max(6, Math.min(24, Math.floor(160 / E)));
  const cellH = rows <= 12 ? 12 : rows <= 40 ? 8 : Math.max(1, Math.floor(256 / rows));
  const labelW = Math.max(...spec.rowLabels.map((s) => textWidth(s)), 6) + 4;
  const tickEvery = Math.max(1, Math.ceil(LINE_H / cellH));
  const mapW = E * cellW;
  const mapH = rows * cellH;
  const panelW = labelW + mapW + PAD;
  const panelH = LINE_H + 4 + mapH + 4 + LINE_H + PAD;
  const cols = gridColumns(L);
  const gridRows = Math.ceil(L / cols);
  const top = 2 * LINE_H + 16;
  const left = PAD + LINE_H + 4; // rotated row-axis caption
  const barX = left + cols * panelW + 2 * PAD;
  const width = Math.max(barX + 14 + 6 + 40 + LINE_H + PAD, textWidth(spec.title, 2) + 2 * PAD);
  const barH = Math.max(textWidth(spec.valueLabel) + 10, Math.min(240, gridRows * panelH - 2 * LINE_H));
  const axisLen = textWidth(spec.rowAxis);
  const height = Math.max(top + gridRows * panelH + LINE_H + 2 * PAD, top + LINE_H + 4 + barH + 2 * PAD, top + axisLen + 2 * PAD);
  const r = new Raster(width, height);
  r.text(PAD, PAD, spec.title, BLACK, 2);

  for (let l = 0; l < L; l++) {
    const px = left + (l % cols) * panelW;
    const py = top + Math.floor(l / cols) * panelH;
    const mx = px + labelW;
    const my = py + LINE_H + 4;
    r.text(mx + mapW / 2, py, `layer ${l}`, BLACK, 1, 'center');
    for (let i = 0; i < rows; i++) for (let e = 0; e < E; e++) r.fillRect(mx + e * cellW, my + i * cellH, cellW, cellH, viridis(spec.layers[l][i][e] / vmax));
    r.strokeRect(mx - 1, my - 1, mapW + 2, mapH + 2, GREY);
    for (let i = 0; i < rows; i += tickEvery) r.text(mx - 3, my + i * cellH + Math.floor(cellH / 2) - 3, spec.rowLabels[i], GREY, 1, 'right');
    const eEvery = Math.max(1, Math.ceil(textWidth(String(E - 1)) / cellW) + (cellW < 10 ? 1 : 0));
    for (let e = 0; e < E; e += eEvery) r.text(mx + e * cellW + cellW / 2, my + mapH + 4, String(e), GREY, 1, 'center');
  }
  const gridBottom = top + gridRows * panelH;
  r.text(left + (cols * panelW) / 2, gridBottom, 'expert', BLACK, 1, 'center');
  r.textUp(PAD, top + Math.max(gridRows * panelH, axisLen) / 2, spec.rowAxis, BLACK);
  colorBar(r, barX, top + LINE_H + 4, barH, vmax, spec.valueLabel);
  return r;
}

/** Per layer, the share of routing slots each expert received; the dashed line is the even share 1/E. */
export function loadBars(stats: RoutingStats): Raster {
  const L = stats.layers;
  const E = stats.experts;
  const even = 1 / E;
  let ymax = 1.5 * even;
  for (const ls of stats.layer) for (const v of ls.loadFraction) ymax = Math.max(ymax, v);
  ymax = Math.min(1, Math.ceil(ymax * 20) / 20 || 0.05);
  const barW = Math.max(6, Math.min(20, Math.floor(160 / E)));
  const plotH = 110;
  const axisW = textWidth('100%') + 6;
  const panelW = axisW + E * barW + 2 * PAD;
  const panelH = LINE_H + 6 + plotH + 4 + LINE_H + PAD;
  const cols = gridColumns(L);
  const gridRows = Math.ceil(L / cols);
  const top = 2 * LINE_H + 16;
  const title = 'Expert load per layer (share of routing slots)';
  const width = Math.max(PAD + cols * panelW + PAD, textWidth(title, 2) + 2 * PAD);
  const r = new Raster(width, top + gridRows * panelH + LINE_H + 2 * PAD);
  r.text(PAD, PAD, title, BLACK, 2);
  for (let l = 0; l < L; l++) {
    const px = PAD + (l % cols) * panelW;
    const py = top + Math.floor(l / cols) * panelH;
    const ax = px + axisW;
    const ay = py + LINE_H + 6; // top of the plot area
    const base = ay + plotH;
    const ls = stats.layer[l];
    r.text(ax + (E * barW) / 2, py, `layer ${l}`, BLACK, 1, 'center');
    for (const f of [0, 0.5, 1]) {
      const ty = Math.round(base - f * plotH);
      r.hline(ax, ax + E * barW, ty, LIGHT);
      r.text(ax - 3, ty - 3, `${fmt(100 * f * ymax, 1)}%`, GREY, 1, 'right');
    }
    for (let e = 0; e < E; e++) {
      const h = Math.round((ls.loadFraction[e] / ymax) * plotH);
      r.fillRect(ax + e * barW + 1, base - h, barW - 2, h, expertColor(e, E));
    }
    r.hline(ax, ax + E * barW, Math.round(base - (even / ymax) * plotH), BLACK, 3);
    r.hline(ax, ax + E * barW, base, BLACK);
    r.vline(ax, ay, base, BLACK);
    const eEvery = Math.max(1, Math.ceil((textWidth(String(E - 1)) + 2) / barW));
    for (let e = 0; e < E; e += eEvery) r.text(ax + e * barW + barW / 2, base + 4, String(e), GREY, 1, 'center');
  }
  r.text(PAD, top + gridRows * panelH, `x: expert; dashed: even share 1/${E} = ${fmt(100 * even, 1)}%`, GREY);
  return r;
}

export interface ImageRef {
  C: number;
  H: number;
  W: number;
}

function drawImage(r: Raster, x0: number, y0: number, size: number, data: Float32Array | null, ref: ImageRef): void {
  if (!data) {
    r.fillRect(x0, y0, size, size, LIGHT);
    return;
  }
  const color = imageColors(data, ref.C, ref.H, ref.W);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) r.set(x0 + x, y0 + y, color(0, Math.floor((y * ref.H) / size), Math.floor((x * ref.W) / size)));
  r.strokeRect(x0 - 1, y0 - 1, size + 2, size + 2, GREY);
}

/**
 * One image at a few steps: its model input x_t, the model's x̂0 (when given), and per layer the
 * patch grid with each patch split into k stripes coloured by its chosen experts, left = the
 * largest gate weight.
 */
export function expertMaps(watched: readonly WatchedStep[], predX0: ReadonlyMap<number, Float32Array>, ref: ImageRef, gridSize: number, E: number, k: number, label: string): Raster {
  const L = watched.length ? watched[0].experts.length : 0;
  const cell = Math.max(2 * k, Math.floor(96 / gridSize));
  const mapSize = cell * gridSize;
  const gap = 10;
  const rowLabelW = textWidth('step 999') + PAD;
  const top = 2 * LINE_H + 16 + LINE_H + 6;
  const colW = mapSize + gap;
  const nCols = 2 + L;
  const legendH = LINE_H + 8 + Math.ceil(E / 16) * (LINE_H + 2);
  const title = `Chosen experts per patch, ${label}`;
  const width = Math.max(rowLabelW + nCols * colW + PAD, textWidth(title, 2) + 2 * PAD, PAD + Math.min(E, 16) * (23 + textWidth(`expert ${E - 1}`)));
  const height = top + watched.length * (mapSize + gap + LINE_H) + legendH + PAD;
  const r = new Raster(width, height);
  r.text(PAD, PAD, title, BLACK, 2);
  const headers = ['x_t (input)', 'x0 predicted', ...Array.from({ length: L }, (_, l) => `layer ${l}`)];
  headers.forEach((h, j) => r.text(rowLabelW + j * colW + mapSize / 2, top - LINE_H - 4, h, BLACK, 1, 'center'));
  watched.forEach((w, i) => {
    const y0 = top + i * (mapSize + gap + LINE_H);
    r.text(PAD, y0 + mapSize / 2 - LINE_H, `step ${w.step}`, BLACK);
    r.text(PAD, y0 + mapSize / 2 + 2, `t=${fmt(w.t, 3)}`, GREY);
    drawImage(r, rowLabelW, y0, mapSize, w.input, ref);
    drawImage(r, rowLabelW + colW, y0, mapSize, predX0.get(w.step) ?? null, ref);
    for (let l = 0; l < L; l++) {
      const x0 = rowLabelW + (2 + l) * colW;
      const ex = w.experts[l];
      for (let p = 0; p < gridSize * gridSize; p++) {
        const cx = x0 + (p % gridSize) * cell;
        const cy = y0 + Math.floor(p / gridSize) * cell;
        for (let j = 0; j < k; j++) {
          const sx = Math.round((j * cell) / k);
          const ex1 = Math.round(((j + 1) * cell) / k);
          r.fillRect(cx + sx, cy, ex1 - sx, cell, expertColor(ex[p * k + j], E));
        }
        if (cell >= 8) {
          // a thin white seam between patches, so the stripes of neighbours do not merge
          r.hline(cx, cx + cell - 1, cy + cell - 1, WHITE);
          r.vline(cx + cell - 1, cy, cy + cell - 1, WHITE);
        }
      }
      r.strokeRect(x0 - 1, y0 - 1, mapSize + 2, mapSize + 2, GREY);
    }
  });
  // legend: one swatch per expert
  const ly = height - legendH;
  r.text(PAD, ly, k > 1 ? `each patch: its ${k} experts as stripes, left = largest gate weight` : 'each patch: its expert', GREY);
  const swatchW = 13 + textWidth(`expert ${E - 1}`) + 10;
  for (let e = 0; e < E; e++) {
    const lx = PAD + (e % 16) * swatchW;
    const lyy = ly + LINE_H + 4 + Math.floor(e / 16) * (LINE_H + 2);
    r.fillRect(lx, lyy, 10, 8, expertColor(e, E));
    r.text(lx + 13, lyy + 1, `expert ${e}`, BLACK);
  }
  return r;
}

/** Pixel variance of a raster over its RGB bytes (0 for a blank picture). */
export function pixelVariance(r: Raster): number {
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (let i = 0; i < r.data.length; i += 4)
    for (let c = 0; c < 3; c++) {
      const v = r.data[i + c];
      sum += v;
      sq += v * v;
      n++;
    }
  const m = sum / n;
  return sq / n - m * m;
}

