/**
 * Heun's method (the explicit trapezoidal rule; Karras et al. 2022, "Elucidating the Design Space
 * of Diffusion-Based Generative Models", Alg. 1) for a rectified flow, with the conventions of
 * the official `RectifiedFlow.sample` (t from 1 to 0, z ← z − v·dt, the model fed t itself,
 * guidance v_u + s·(v_c − v_u) on the velocity with a separate null-class pass):
 *   t_i = 1 − i/n,  d₁ = v(z, t_i),  z' = z − d₁/n
 *   t_{i+1} > 0:    d₂ = v(z', t_{i+1}),  z ← z − (d₁ + d₂)/(2n)
 *   t_{i+1} = 0:    z ← z'   (the last step is Euler: no evaluation at t = 0)
 * 2n − 1 model evaluations (each a pair under guidance). onStep's x_0 prediction is z − t_i·d₁.
 *   z [N, C, H, W]  →  x_0 [N, C, H, W]
 */
import { DitMoeError } from '../../core/errors.js';
import { dims, flowVelocity, type SampleOptions } from './samplers.js';

const f = Math.fround;

export function sampleHeun(o: SampleOptions & { steps: number }): Float32Array {
  const { N, C, H, W, D } = dims(o);
  const n = o.steps;
  if (!Number.isInteger(n) || n < 1) throw new DitMoeError(`steps must be a positive integer, got ${n}`, '--steps');
  const shape = [N, C, H, W];
  const dt = f(1 / n);
  const half = f(0.5 * dt);
  const v = (x: Float32Array, t: number) => flowVelocity(o.model, x, shape, new Float32Array(N).fill(t), o.y, o.guidance);
  let z: Float32Array = Float32Array.from(o.z);
  for (let i = 0; i < n; i++) {
    const t = 1 - i / n;
    const tNext = 1 - (i + 1) / n;
    const d1 = v(z, t);
    const euler = new Float32Array(N * D);
    for (let k = 0; k < euler.length; k++) euler[k] = f(z[k] - f(dt * d1[k]));
    const predX0 = new Float32Array(N * D);
    const tt = f(t);
    for (let k = 0; k < predX0.length; k++) predX0[k] = f(z[k] - f(tt * d1[k]));
    if (tNext > 0) {
      const d2 = v(euler, tNext);
      const next = new Float32Array(N * D);
      for (let k = 0; k < next.length; k++) next[k] = f(z[k] - f(half * f(d1[k] + d2[k])));
      z = next;
    } else z = euler;
    o.onStep?.(i, n, z, predX0);
  }
  return z;
}
