/**
 * GroupNorm (+ optional SiLU) over x [N, C, S] (ref/vae/groupNorm.ts gives the formula), for the
 * flattened groups [g0, g1) of the N·G (image, group) pairs, so threads can share them.
 * Mean and variance in f64 (two passes, as ref); the normalisation, affine and SiLU in f32x4
 * with the vector exp of activations.ts. w, b are 0 without affine.
 */
import { exp4 } from './activations';

export function groupNormGroups(out: usize, x: usize, w: usize, b: usize, C: i32, S: i32, G: i32, eps: f64, silu: i32, g0: i32, g1: i32): void {
  const cg = C / G;
  const len = cg * S;
  const one = f32x4.splat(1.0);
  for (let gf = g0; gf < g1; gf++) {
    const g = gf % G;
    const base = (<usize>gf * len) * 4;
    let s: f64 = 0;
    for (let i = 0; i < len; i++) s += <f64>load<f32>(x + base + (<usize>i) * 4);
    const mu = s / <f64>len;
    let v: f64 = 0;
    for (let i = 0; i < len; i++) {
      const d = <f64>load<f32>(x + base + (<usize>i) * 4) - mu;
      v += d * d;
    }
    const r = 1 / Math.sqrt(v / <f64>len + eps);
    for (let cc = 0; cc < cg; cc++) {
      const c = g * cg + cc;
      const sc: f64 = w ? <f64>load<f32>(w + (<usize>c) * 4) : 1;
      const sh: f64 = b ? <f64>load<f32>(b + (<usize>c) * 4) : 0;
      // y = (x − μ)·a + sh with a = r·sc (centred first: x·a − μ·a would cancel when r is large)
      const a = <f32>(r * sc);
      const d = <f32>sh;
      const m = <f32>mu;
      const av = f32x4.splat(a);
      const dv = f32x4.splat(d);
      const mv = f32x4.splat(m);
      const xi = x + base + (<usize>cc * S) * 4;
      const oi = out + base + (<usize>cc * S) * 4;
      const S4 = S & ~3;
      for (let i = 0; i < S4; i += 4) {
        const o = (<usize>i) * 4;
        let y = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xi + o), mv), av), dv);
        if (silu) y = f32x4.div(y, f32x4.add(one, exp4(f32x4.neg(y))));
        v128.store(oi + o, y);
      }
      for (let i = S4; i < S; i++) {
        const o = (<usize>i) * 4;
        let y = (load<f32>(xi + o) - m) * a + d;
        if (silu) y = y / (<f32>1 + f32x4.extract_lane(exp4(f32x4.splat(-y)), 0));
        store<f32>(oi + o, y);
      }
    }
  }
}
