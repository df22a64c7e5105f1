/**
 * Fixed 2-D sin-cos position embedding (official `get_2d_sincos_pos_embed`, from MAE),
 * computed in float64 and stored as float32:
 *   omega_d = 1 / 10000^(d / (D/4)), d < D/4
 *   1-D embedding of a coordinate u: [sin(u·omega), cos(u·omega)]                  (D/2)
 *   token at row r, column q of a G×G grid: [emb1d(q), emb1d(r)]                  → [G·G, D]
 * (the official meshgrid puts the column coordinate first).
 */
export function posEmbed2d(D: number, G: number): Float32Array {
  const out = new Float32Array(G * G * D);
  const quarter = D / 4;
  const omega = new Float64Array(quarter);
  for (let d = 0; d < quarter; d++) omega[d] = 1 / Math.pow(10000, d / (D / 2 / 2));
  for (let r = 0; r < G; r++)
    for (let q = 0; q < G; q++) {
      const o = (r * G + q) * D;
      for (let d = 0; d < quarter; d++) {
        out[o + d] = Math.sin(q * omega[d]);
        out[o + quarter + d] = Math.cos(q * omega[d]);
        out[o + 2 * quarter + d] = Math.sin(r * omega[d]);
        out[o + 3 * quarter + d] = Math.cos(r * omega[d]);
      }
    }
  return out;
}
