/**
 * A small SVG builder for the figures: rectangles, lines, polylines, text in a real font
 * (DejaVu Sans, bundled for rasterising by render/rasterize.ts; a browser falls back to its sans
 * serif), and pixel images as runs of rectangles. Coordinates in CSS pixels, y down.
 *   new Svg(width, height) … .toString()  →  the file's text
 */
import type { RGB } from './colormap.js';

export const FONT = "'DejaVu Sans', Verdana, sans-serif";
export const BLACK: RGB = [0, 0, 0];
export const GREY: RGB = [110, 110, 110];
export const LIGHT: RGB = [228, 228, 228];
export const WHITE: RGB = [255, 255, 255];

/** The width of `s` in DejaVu Sans at `size` px, estimated (digits and lower case average ~0.6 em). */
export function textWidth(s: string, size: number): number {
  let em = 0;
  for (const ch of s) em += ch === ' ' ? 0.32 : /[A-Z%]/.test(ch) ? 0.72 : /[il.,:;'|!]/.test(ch) ? 0.3 : /[mwMW]/.test(ch) ? 0.9 : 0.62;
  return em * size;
}

function colour(c: RGB | string): string {
  return typeof c === 'string' ? c : `rgb(${c[0]},${c[1]},${c[2]})`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]!);
}

const r2 = (v: number) => Math.round(v * 100) / 100;

export interface TextStyle {
  size?: number; // px, default 12
  anchor?: 'start' | 'middle' | 'end';
  fill?: RGB | string;
  bold?: boolean;
  /** degrees, about (x, y); -90 reads bottom to top */
  rotate?: number;
  /** the vertical reference of y: the baseline (default) or the middle of the lower-case letters */
  middle?: boolean;
}

export class Svg {
  private readonly parts: string[] = [];

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.width = Math.max(1, Math.ceil(width));
    this.height = Math.max(1, Math.ceil(height));
  }

  rect(x: number, y: number, w: number, h: number, fill: RGB | string, stroke?: RGB | string): this {
    this.parts.push(`<rect x="${r2(x)}" y="${r2(y)}" width="${r2(w)}" height="${r2(h)}" fill="${fill === 'none' ? 'none' : colour(fill)}"${stroke ? ` stroke="${colour(stroke)}"` : ''}/>`);
    return this;
  }

  line(x0: number, y0: number, x1: number, y1: number, stroke: RGB | string, width = 1, dash?: string): this {
    this.parts.push(`<line x1="${r2(x0)}" y1="${r2(y0)}" x2="${r2(x1)}" y2="${r2(y1)}" stroke="${colour(stroke)}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    return this;
  }

  polyline(points: readonly (readonly [number, number])[], stroke: RGB | string, width = 1.5): this {
    if (points.length === 0) return this;
    if (points.length === 1) return this.rect(points[0][0] - width, points[0][1] - width, 2 * width, 2 * width, stroke);
    this.parts.push(`<polyline points="${points.map(([x, y]) => `${r2(x)},${r2(y)}`).join(' ')}" fill="none" stroke="${colour(stroke)}" stroke-width="${width}" stroke-linejoin="round" stroke-linecap="round"/>`);
    return this;
  }

  text(x: number, y: number, s: string, style: TextStyle = {}): this {
    const size = style.size ?? 12;
    const attrs = [`x="${r2(x)}"`, `y="${r2(style.middle ? y + 0.36 * size : y)}"`, `font-size="${size}"`];
    if (style.anchor && style.anchor !== 'start') attrs.push(`text-anchor="${style.anchor}"`);
    if (style.fill) attrs.push(`fill="${colour(style.fill)}"`);
    if (style.bold) attrs.push('font-weight="bold"');
    if (style.rotate) attrs.push(`transform="rotate(${style.rotate} ${r2(x)} ${r2(y)})"`);
    this.parts.push(`<text ${attrs.join(' ')}>${esc(s)}</text>`);
    return this;
  }

  /** An H×W picture drawn at (x, y) with `scale` px per pixel, one rectangle per run of equal pixels in a row. */
  pixels(x: number, y: number, H: number, W: number, scale: number, pixel: (row: number, col: number) => RGB): this {
    const out: string[] = [];
    for (let i = 0; i < H; i++) {
      let j = 0;
      while (j < W) {
        const c = pixel(i, j);
        let e = j + 1;
        while (e < W && sameRgb(pixel(i, e), c)) e++;
        out.push(`<rect x="${r2(x + j * scale)}" y="${r2(y + i * scale)}" width="${r2((e - j) * scale)}" height="${r2(scale)}" fill="${colour(c)}"/>`);
        j = e;
      }
    }
    this.parts.push(`<g shape-rendering="crispEdges">${out.join('')}</g>`);
    return this;
  }

  /** SVG markup as it is (definitions such as a gradient). */
  raw(markup: string): this {
    this.parts.push(markup);
    return this;
  }

  /** Starts a group of crisp-edged shapes (cells of a heatmap, bars); `end()` closes it. */
  crisp(): this {
    this.parts.push('<g shape-rendering="crispEdges">');
    return this;
  }

  end(): this {
    this.parts.push('</g>');
    return this;
  }

  toString(): string {
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}" viewBox="0 0 ${this.width} ${this.height}" font-family="${FONT}" fill="rgb(0,0,0)">`,
      `<rect width="${this.width}" height="${this.height}" fill="white"/>`,
      ...this.parts,
      '</svg>',
      '',
    ].join('\n');
  }
}

function sameRgb(a: RGB, b: RGB): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

/** A short number for ticks: 0.25, 12, 1.2e-3. */
export function fmt(v: number, digits = 2): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toFixed(a >= 10 ? 1 : digits)));
}

/** About `count` round tick values (1, 2, 5 × 10^n apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return ticks;
}
