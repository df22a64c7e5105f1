/**
 * A small RGBA pixel buffer to draw figures into: rectangles, lines, bitmap-font text,
 * pasting one raster into another; encoded to PNG by pngjs.
 *   data [height, width, 4] bytes, row-major, opaque white to begin with.
 */
import { PNG } from 'pngjs';
import type { RGB } from '../render/colormap.js';
import { glyph, textWidth, ADVANCE, GLYPH_H, GLYPH_W } from './font.js';

export const WHITE: RGB = [255, 255, 255];
export const BLACK: RGB = [0, 0, 0];
export const GREY: RGB = [120, 120, 120];
export const LIGHT: RGB = [225, 225, 225];

export class Raster {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: RGB = WHITE,
  ) {
    this.width = Math.max(1, Math.round(width));
    this.height = Math.max(1, Math.round(height));
    this.data = new Uint8Array(this.width * this.height * 4);
    this.fillRect(0, 0, this.width, this.height, background);
  }

  /** One pixel (clipped to the raster). */
  set(x: number, y: number, c: RGB): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
    this.data[o + 3] = 255;
  }

  fillRect(x: number, y: number, w: number, h: number, c: RGB): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++)
      for (let xx = x0; xx < x1; xx++) {
        const o = (yy * this.width + xx) * 4;
        this.data[o] = c[0];
        this.data[o + 1] = c[1];
        this.data[o + 2] = c[2];
        this.data[o + 3] = 255;
      }
  }

  /** A one-pixel rectangle outline. */
  strokeRect(x: number, y: number, w: number, h: number, c: RGB): void {
    this.hline(x, x + w - 1, y, c);
    this.hline(x, x + w - 1, y + h - 1, c);
    this.vline(x, y, y + h - 1, c);
    this.vline(x + w - 1, y, y + h - 1, c);
  }

  /** Horizontal line from x0 to x1 inclusive; `dash` > 0 draws dash-on, dash-off. */
  hline(x0: number, x1: number, y: number, c: RGB, dash = 0): void {
    for (let x = Math.round(x0); x <= Math.round(x1); x++) if (dash === 0 || Math.floor((x - x0) / dash) % 2 === 0) this.set(x, Math.round(y), c);
  }

  vline(x: number, y0: number, y1: number, c: RGB, dash = 0): void {
    for (let y = Math.round(y0); y <= Math.round(y1); y++) if (dash === 0 || Math.floor((y - y0) / dash) % 2 === 0) this.set(Math.round(x), y, c);
  }

  /**
   * Text in the built-in 5×7 font, top-left at (x, y); align 'center' or 'right' measure from x.
   * Returns the width drawn.
   */
  text(x: number, y: number, s: string, c: RGB = BLACK, scale = 1, align: 'left' | 'center' | 'right' = 'left'): number {
    const w = textWidth(s, scale);
    let cx = Math.round(align === 'left' ? x : align === 'center' ? x - w / 2 : x - w);
    for (const ch of s) {
      const g = glyph(ch);
      for (let gy = 0; gy < GLYPH_H; gy++) for (let gx = 0; gx < GLYPH_W; gx++) if (g[gy][gx] === '#') this.fillRect(cx + gx * scale, y + gy * scale, scale, scale, c);
      cx += ADVANCE * scale;
    }
    return w;
  }

  /** Text rotated 90° anticlockwise (reads bottom to top), its baseline box centred on (x, yCenter). */
  textUp(x: number, yCenter: number, s: string, c: RGB = BLACK, scale = 1): void {
    const w = textWidth(s, scale);
    let cy = Math.round(yCenter + w / 2);
    for (const ch of s) {
      const g = glyph(ch);
      // glyph column gx goes up, glyph row gy goes right
      for (let gy = 0; gy < GLYPH_H; gy++) for (let gx = 0; gx < GLYPH_W; gx++) if (g[gy][gx] === '#') this.fillRect(x + gy * scale, cy - (gx + 1) * scale, scale, scale, c);
      cy -= ADVANCE * scale;
    }
  }

  /** Copies `src` with its top-left corner at (x, y). */
  paste(src: Raster, x: number, y: number): void {
    for (let sy = 0; sy < src.height; sy++) {
      const ty = y + sy;
      if (ty < 0 || ty >= this.height) continue;
      for (let sx = 0; sx < src.width; sx++) {
        const tx = x + sx;
        if (tx < 0 || tx >= this.width) continue;
        const so = (sy * src.width + sx) * 4;
        const to = (ty * this.width + tx) * 4;
        this.data[to] = src.data[so];
        this.data[to + 1] = src.data[so + 1];
        this.data[to + 2] = src.data[so + 2];
        this.data[to + 3] = 255;
      }
    }
  }

  /** A copy enlarged f times (nearest neighbour), for small figures on large screens. */
  scaled(f: number): Raster {
    const out = new Raster(this.width * f, this.height * f);
    for (let y = 0; y < out.height; y++)
      for (let x = 0; x < out.width; x++) {
        const so = (Math.floor(y / f) * this.width + Math.floor(x / f)) * 4;
        const to = (y * out.width + x) * 4;
        for (let c = 0; c < 4; c++) out.data[to + c] = this.data[so + c];
      }
    return out;
  }

  /** PNG file bytes. */
  png(): Uint8Array {
    const img = new PNG({ width: this.width, height: this.height });
    img.data.set(this.data);
    return new Uint8Array(PNG.sync.write(img));
  }
}
