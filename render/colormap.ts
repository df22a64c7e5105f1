/**
 * Colour maps for the figures.
 *   viridis(v)      v ∈ [0, 1] → RGB: matplotlib's perceptually uniform map, as its 11 stops
 *                   at 0, 0.1, …, 1 linearly interpolated (dark blue-purple → yellow; lightness
 *                   rises steadily, so it reads in greyscale and for colour-blind readers).
 *   expertColor(e)  expert index → a categorical colour (Tableau 10, then 20, then a hue wheel).
 */
export type RGB = readonly [number, number, number];

export const VIRIDIS_STOPS: readonly string[] = ['440154', '482475', '414487', '355f8d', '2a788e', '21918c', '22a884', '44bf70', '7ad151', 'bddf26', 'fde725'];

function hex(h: string): RGB {
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

const VIRIDIS: readonly RGB[] = VIRIDIS_STOPS.map(hex);

/** v ∈ [0, 1] (clamped; NaN draws as grey) → viridis RGB. */
export function viridis(v: number): RGB {
  if (Number.isNaN(v)) return [128, 128, 128];
  const x = Math.min(1, Math.max(0, v)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return [Math.round(a[0] + f * (b[0] - a[0])), Math.round(a[1] + f * (b[1] - a[1])), Math.round(a[2] + f * (b[2] - a[2]))];
}

const TAB10 = ['1f77b4', 'ff7f0e', '2ca02c', 'd62728', '9467bd', '8c564b', 'e377c2', '7f7f7f', 'bcbd22', '17becf'].map(hex);
const TAB20 = ['1f77b4', 'aec7e8', 'ff7f0e', 'ffbb78', '2ca02c', '98df8a', 'd62728', 'ff9896', '9467bd', 'c5b0d5', '8c564b', 'c49c94', 'e377c2', 'f7b6d2', '7f7f7f', 'c7c7c7', 'bcbd22', 'dbdb8d', '17becf', '9edae5'].map(hex);

/** A distinct colour for expert e of E. */
export function expertColor(e: number, E: number): RGB {
  if (E <= 10) return TAB10[e];
  if (E <= 20) return TAB20[e];
  return hsl((e * 360) / E, 0.65, e % 2 === 0 ? 0.45 : 0.62);
}

function hsl(h: number, s: number, l: number): RGB {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = (h % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const [r, g, b] = hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  const m = l - c / 2;
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}
