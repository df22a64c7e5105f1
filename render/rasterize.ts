/**
 * SVG → pixels and PNG, by resvg (@resvg/resvg-js, a prebuilt native binary from npm) with the
 * DejaVu Sans font of the npm package `dejavu-fonts-ttf` and no system fonts, so every machine
 * draws the same letters. Node only.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Resvg } from '@resvg/resvg-js';

let fontFiles: string[] | null = null;

function fonts(): string[] {
  if (!fontFiles) {
    const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    fontFiles = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => path.join(dir, f));
  }
  return fontFiles;
}

function render(svg: string, scale: number) {
  return new Resvg(svg, {
    fitTo: scale === 1 ? { mode: 'original' } : { mode: 'zoom', value: scale },
    font: { loadSystemFonts: false, fontFiles: fonts(), defaultFontFamily: 'DejaVu Sans' },
    background: 'white',
  }).render();
}

/** The PNG file of an SVG, `scale` device pixels per SVG pixel. */
export function svgToPng(svg: string, scale = 1): Uint8Array {
  return new Uint8Array(render(svg, scale).asPng());
}

/** The RGBA pixels of an SVG: data [height, width, 4]. */
export function svgPixels(svg: string, scale = 1): { width: number; height: number; data: Uint8Array } {
  const img = render(svg, scale);
  return { width: img.width, height: img.height, data: new Uint8Array(img.pixels) };
}

/** Variance of the RGB bytes of RGBA pixels: 0 for a blank picture. */
export function pixelVariance(data: Uint8Array): number {
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (let i = 0; i < data.length; i += 4)
    for (let c = 0; c < 3; c++) {
      const v = data[i + c];
      sum += v;
      sq += v * v;
      n++;
    }
  const m = sum / n;
  return sq / n - m * m;
}
