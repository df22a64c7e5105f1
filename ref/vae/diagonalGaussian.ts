/**
 * The VAE's posterior, diffusers' `DiagonalGaussianDistribution`:
 *   moments [N, 2L, H, W] = [mean; logvar] over channels,  logvar ← clamp(logvar, −30, 20)
 *   mean  → [N, L, H, W]
 *   sample = mean + exp(0.5 · logvar) · noise           (noise [N, L, H, W] given)
 * Latents for a diffusion model are (z − shift) · scale (SD: shift 0, scale 0.18215).
 */
export function gaussianMean(moments: Float32Array, N: number, L: number, S: number): Float32Array {
  const out = new Float32Array(N * L * S);
  for (let n = 0; n < N; n++) out.set(moments.subarray(n * 2 * L * S, n * 2 * L * S + L * S), n * L * S);
  return out;
}

export function gaussianSample(moments: Float32Array, noise: Float32Array, N: number, L: number, S: number): Float32Array {
  const out = new Float32Array(N * L * S);
  for (let n = 0; n < N; n++) {
    const m = n * 2 * L * S;
    for (let i = 0; i < L * S; i++) {
      const logvar = Math.min(20, Math.max(-30, moments[m + L * S + i]));
      const std = Math.fround(Math.exp(Math.fround(0.5 * logvar)));
      out[n * L * S + i] = moments[m + i] + std * noise[n * L * S + i];
    }
  }
  return out;
}

/** In place: z ← (z − shift) · scale (to the diffusion model's latents) or, inverse, z ← z / scale + shift. */
export function scaleLatents(z: Float32Array, scale: number, shift: number, inverse: boolean): Float32Array {
  for (let i = 0; i < z.length; i++) z[i] = inverse ? z[i] / scale + shift : (z[i] - shift) * scale;
  return z;
}
