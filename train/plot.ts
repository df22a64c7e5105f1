/**
 * The loss curve of a training run as a PNG (pngjs): a line plot of one or more series over the
 * steps, with axes, grid lines and tick values in a 3×5 pixel font (no font files needed).
 * Sample grids are cli/images.ts's gridPng.
 */
import { PNG } from 'pngjs';

type Rgb = [number, number, number];

function canvas(w: number, h: number, bg: Rgb = [255, 255, 255]): PNG {
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    png.data[4 * i] = bg[0];
    png.data[4 * i + 1] = bg[1];
    png.data[4 * i + 2] = bg[2];
    png.data[4 * i + 3] = 255;
  }
  return png;
}

function put(png: PNG, x: number, y: number, c: Rgb): void {
  if (x < 0 || y < 0 || x >= png.width || y >= png.height) return;
  const o = 4 * (y * png.width + Math.round(x));
  png.data[o] = c[0];
  png.data[o + 1] = c[1];
  png.data[o + 2] = c[2];
}

// 3×5 glyphs, rows top to bottom, 3 bits each (4 = left column)
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [7, 1, 7, 4, 7], '3': [7, 1, 7, 1, 7], '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7], '6': [7, 4, 7, 5, 7], '7': [7, 1, 1, 2, 2], '8': [7, 5, 7, 5, 7], '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2], '-': [0, 0, 7, 0, 0], e: [0, 7, 7, 4, 7], k: [4, 5, 6, 5, 5],
};

function text(png: PNG, x: number, y: number, s: string, c: Rgb, size = 2): void {
  for (const ch of s) {
    const g = GLYPHS[ch];
    if (g) for (let r = 0; r < 5; r++) for (let b = 0; b < 3; b++) if (g[r] & (4 >> b)) for (let dy = 0; dy < size; dy++) for (let dx = 0; dx < size; dx++) put(png, x + b * size + dx, y + r * size + dy, c);
    x += 4 * size;
  }
}

function line(png: PNG, x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
  for (let i = 0; i <= n; i++) put(png, Math.round(x0 + ((x1 - x0) * i) / n), Math.round(y0 + ((y1 - y0) * i) / n), c);
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return `${+(v / 1000).toPrecision(3)}k`;
  if (a >= 0.01) return String(+v.toPrecision(3));
  return v.toExponential(1).replace('+', '');
}

export interface Series {
  x: number[];
  y: number[];
  color: Rgb;
}

/** A line plot of the series (e.g. the loss per step and its moving average); y from the data's range. */
export function lossCurvePng(series: Series[], width = 640, height = 360): Uint8Array {
  const png = canvas(width, height);
  const L = 60;
  const R = 15;
  const T = 15;
  const Bm = 30;
  const xs = series.flatMap((s) => s.x);
  const ys = series.flatMap((s) => s.y).filter(Number.isFinite);
  // reduce, not Math.min(...xs): a spread of a long run's 10⁵ steps overflows the call stack
  const x0 = xs.reduce((m, v) => Math.min(m, v), 0);
  const x1 = xs.reduce((m, v) => Math.max(m, v), 1);
  let y0 = ys.length ? ys.reduce((m, v) => Math.min(m, v), Infinity) : 0;
  let y1 = ys.length ? ys.reduce((m, v) => Math.max(m, v), -Infinity) : 1;
  if (y1 - y0 < 1e-12) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (width - L - R);
  const py = (y: number) => height - Bm - ((y - y0) / (y1 - y0)) * (height - T - Bm);
  const axis: Rgb = [0, 0, 0];
  const grid: Rgb = [225, 225, 225];
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4;
    const yy = py(yv);
    line(png, L, yy, width - R, yy, grid);
    text(png, 4, Math.round(yy) - 5, fmt(yv), axis);
    const xv = x0 + ((x1 - x0) * i) / 4;
    const xx = px(xv);
    line(png, xx, T, xx, height - Bm, grid);
    text(png, Math.round(xx) - 8, height - Bm + 8, fmt(Math.round(xv)), axis);
  }
  line(png, L, T, L, height - Bm, axis);
  line(png, L, height - Bm, width - R, height - Bm, axis);
  for (const s of series) {
    for (let i = 1; i < s.x.length; i++) {
      if (!Number.isFinite(s.y[i - 1]) || !Number.isFinite(s.y[i])) continue;
      line(png, px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), s.color);
    }
    if (s.x.length === 1) put(png, px(s.x[0]), py(s.y[0]), s.color);
  }
  return PNG.sync.write(png);
}
