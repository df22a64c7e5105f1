/**
 * The figures of the routing analysis that are its own, as SVG (render/svg.ts); the generic
 * charts are render/charts.ts's:
 *   loadBars     per layer, the share of routing slots each expert received, with the even
 *                share 1/E dashed (render/charts.ts barPanels)
 *   expertMaps   for one image at a few steps: the image being denoised (and the model's x̂0)
 *                next to its patch grid coloured by the chosen experts, one grid per layer
 * The heatmaps are render/charts.ts's heatmapGrid.
 */
import { imageColors } from '../render/pixels.js';
import { Svg, BLACK, GREY, LIGHT, WHITE, textWidth, fmt } from '../render/svg.js';
import { barPanels } from '../render/charts.js';
import { expertColor } from '../render/colormap.js';
import type { RoutingStats, WatchedStep } from './recorder.js';

const PAD = 12;
const TITLE = 16;
const LABEL = 12;
const TICK = 10.5;

/** Per layer, the share of routing slots each expert received; the dashed line is the even share 1/E. */
export function loadBars(stats: RoutingStats): Svg {
  const E = stats.experts;
  const even = 1 / E;
  let ymax = 1.5 * even;
  for (const ls of stats.layer) for (const v of ls.loadFraction) ymax = Math.max(ymax, v);
  ymax = Math.min(1, Math.ceil(ymax * 20) / 20 || 0.05);
  return barPanels({
    title: 'Expert load per layer (share of routing slots)',
    panels: stats.layer.map((ls, l) => ({ title: `layer ${l}`, values: ls.loadFraction })),
    color: expertColor,
    yMax: ymax,
    yFormat: (v) => `${fmt(100 * v, 1)}%`,
    reference: even,
    caption: `x: expert; dashed: the even share 1/${E} = ${fmt(100 * even, 1)}%`,
  });
}

export interface ImageRef {
  C: number;
  H: number;
  W: number;
}

function drawImage(svg: Svg, x0: number, y0: number, size: number, data: Float32Array | null, ref: ImageRef): void {
  if (!data) {
    svg.rect(x0, y0, size, size, LIGHT);
    return;
  }
  const color = imageColors(data, ref.C, ref.H, ref.W);
  svg.pixels(x0, y0, ref.H, ref.W, size / Math.max(ref.H, ref.W), (y, x) => color(0, y, x));
  svg.rect(x0, y0, size, size, 'none', GREY);
}

/**
 * One image at a few steps: its model input x_t, the model's x̂0 (when given), and per layer the
 * patch grid with each patch split into k stripes coloured by its chosen experts, left = the
 * largest gate weight.
 */
export function expertMaps(watched: readonly WatchedStep[], predX0: ReadonlyMap<number, Float32Array>, ref: ImageRef, gridSize: number, E: number, k: number, label: string): Svg {
  const L = watched.length ? watched[0].experts.length : 0;
  const cell = Math.max(3 * k, Math.floor(112 / gridSize));
  const mapSize = cell * gridSize;
  const gap = 14;
  const rowLabelW = textWidth('step 999', LABEL) + 2 * PAD;
  const top = PAD + TITLE + 16 + LABEL + 8;
  const colW = mapSize + gap;
  const nCols = 2 + L;
  const perRow = Math.min(E, 12);
  const swatchW = 18 + textWidth(`expert ${E - 1}`, TICK) + 14;
  const legendH = TICK + 10 + Math.ceil(E / perRow) * (TICK + 8);
  const title = `Chosen experts per patch, ${label}`;
  const width = Math.max(rowLabelW + nCols * colW + PAD, textWidth(title, TITLE) + 2 * PAD, 2 * PAD + perRow * swatchW);
  const rowH = mapSize + gap;
  const height = top + watched.length * rowH + legendH + 2 * PAD;
  const svg = new Svg(width, height);
  svg.text(PAD, PAD + TITLE, title, { size: TITLE, bold: true });
  const headers = ['x_t (input)', 'x0 predicted', ...Array.from({ length: L }, (_, l) => `layer ${l}`)];
  headers.forEach((h, j) => svg.text(rowLabelW + j * colW + mapSize / 2, top - 8, h, { size: LABEL, anchor: 'middle', bold: j >= 2 }));
  watched.forEach((w, i) => {
    const y0 = top + i * rowH;
    svg.text(PAD, y0 + mapSize / 2 - 2, `step ${w.step}`, { size: LABEL });
    svg.text(PAD, y0 + mapSize / 2 + LABEL + 2, `t = ${fmt(w.t, 3)}`, { size: TICK, fill: GREY });
    drawImage(svg, rowLabelW, y0, mapSize, w.input, ref);
    drawImage(svg, rowLabelW + colW, y0, mapSize, predX0.get(w.step) ?? null, ref);
    for (let l = 0; l < L; l++) {
      const x0 = rowLabelW + (2 + l) * colW;
      const ex = w.experts[l];
      svg.crisp();
      for (let p = 0; p < gridSize * gridSize; p++) {
        const cx = x0 + (p % gridSize) * cell;
        const cy = y0 + Math.floor(p / gridSize) * cell;
        for (let j = 0; j < k; j++) {
          const sx = Math.round((j * cell) / k);
          const ex1 = Math.round(((j + 1) * cell) / k);
          svg.rect(cx + sx, cy, ex1 - sx, cell, expertColor(ex[p * k + j], E));
        }
      }
      svg.end();
      if (cell >= 8) {
        // thin white seams between patches, so the stripes of neighbours do not merge
        for (let g = 1; g < gridSize; g++) {
          svg.line(x0 + g * cell, y0, x0 + g * cell, y0 + mapSize, WHITE, 1);
          svg.line(x0, y0 + g * cell, x0 + mapSize, y0 + g * cell, WHITE, 1);
        }
      }
      svg.rect(x0, y0, mapSize, mapSize, 'none', GREY);
    }
  });
  // legend: one swatch per expert
  const ly = top + watched.length * rowH + PAD;
  svg.text(PAD, ly + TICK, k > 1 ? `each patch: its ${k} experts as stripes, left = largest gate weight` : 'each patch: its expert', { size: TICK + 0.5, fill: GREY });
  for (let e = 0; e < E; e++) {
    const lx = PAD + (e % perRow) * swatchW;
    const lyy = ly + TICK + 10 + Math.floor(e / perRow) * (TICK + 8);
    svg.rect(lx, lyy, 14, 10, expertColor(e, E));
    svg.text(lx + 18, lyy + 5, `expert ${e}`, { size: TICK, middle: true });
  }
  return svg;
}
