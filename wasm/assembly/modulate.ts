/**
 * adaLN modulation and the gated residual of a DiT block, and their backwards (ref/modulate.ts),
 * over x [B, T, D] with one vector per sequence [B, D] broadcast over its T tokens. f32x4 over
 * D, a scalar tail for D % 4. The host splits B between threads (the [B, D] sums of the
 * backwards are per sequence, so sequences are independent).
 */

/** out = x · (1 + scale) + shift */
export function modulateForward(out: usize, x: usize, shift: usize, scale: usize, B: i32, T: i32, D: i32): void {
  const D4 = D & ~3;
  const one = f32x4.splat(1);
  for (let b = 0; b < B; b++) {
    const sh = shift + (<usize>b * D) * 4;
    const sc = scale + (<usize>b * D) * 4;
    for (let t = 0; t < T; t++) {
      const o = (<usize>(b * T + t) * D) * 4;
      let d = 0;
      for (; d < D4; d += 4) {
        const j = (<usize>d) * 4;
        v128.store(out + o + j, f32x4.add(f32x4.mul(v128.load(x + o + j), f32x4.add(one, v128.load(sc + j))), v128.load(sh + j)));
      }
      for (; d < D; d++) {
        const j = (<usize>d) * 4;
        store<f32>(out + o + j, load<f32>(x + o + j) * (1 + load<f32>(sc + j)) + load<f32>(sh + j));
      }
    }
  }
}

/** dx += dy · (1 + scale), dscale[b] += Σ_t dy · x, dshift[b] += Σ_t dy */
export function modulateBackward(dx: usize, dshift: usize, dscale: usize, dout: usize, x: usize, scale: usize, B: i32, T: i32, D: i32): void {
  const D4 = D & ~3;
  const one = f32x4.splat(1);
  for (let b = 0; b < B; b++) {
    const bo = (<usize>b * D) * 4;
    for (let t = 0; t < T; t++) {
      const o = (<usize>(b * T + t) * D) * 4;
      let d = 0;
      for (; d < D4; d += 4) {
        const j = (<usize>d) * 4;
        const g = v128.load(dout + o + j);
        v128.store(dx + o + j, f32x4.add(v128.load(dx + o + j), f32x4.mul(g, f32x4.add(one, v128.load(scale + bo + j)))));
        v128.store(dscale + bo + j, f32x4.add(v128.load(dscale + bo + j), f32x4.mul(g, v128.load(x + o + j))));
        v128.store(dshift + bo + j, f32x4.add(v128.load(dshift + bo + j), g));
      }
      for (; d < D; d++) {
        const j = (<usize>d) * 4;
        const g = load<f32>(dout + o + j);
        store<f32>(dx + o + j, load<f32>(dx + o + j) + g * (1 + load<f32>(scale + bo + j)));
        store<f32>(dscale + bo + j, load<f32>(dscale + bo + j) + g * load<f32>(x + o + j));
        store<f32>(dshift + bo + j, load<f32>(dshift + bo + j) + g);
      }
    }
  }
}

/** x += gate · f (in place) */
export function gatedResidualForward(x: usize, f: usize, gate: usize, B: i32, T: i32, D: i32): void {
  const D4 = D & ~3;
  for (let b = 0; b < B; b++) {
    const go = gate + (<usize>b * D) * 4;
    for (let t = 0; t < T; t++) {
      const o = (<usize>(b * T + t) * D) * 4;
      let d = 0;
      for (; d < D4; d += 4) {
        const j = (<usize>d) * 4;
        v128.store(x + o + j, f32x4.add(v128.load(x + o + j), f32x4.mul(v128.load(go + j), v128.load(f + o + j))));
      }
      for (; d < D; d++) {
        const j = (<usize>d) * 4;
        store<f32>(x + o + j, load<f32>(x + o + j) + load<f32>(go + j) * load<f32>(f + o + j));
      }
    }
  }
}

/** df += dy · gate, dgate[b] += Σ_t dy · f */
export function gatedResidualBackward(df: usize, dgate: usize, dout: usize, f: usize, gate: usize, B: i32, T: i32, D: i32): void {
  const D4 = D & ~3;
  for (let b = 0; b < B; b++) {
    const bo = (<usize>b * D) * 4;
    for (let t = 0; t < T; t++) {
      const o = (<usize>(b * T + t) * D) * 4;
      let d = 0;
      for (; d < D4; d += 4) {
        const j = (<usize>d) * 4;
        const g = v128.load(dout + o + j);
        v128.store(df + o + j, f32x4.add(v128.load(df + o + j), f32x4.mul(g, v128.load(gate + bo + j))));
        v128.store(dgate + bo + j, f32x4.add(v128.load(dgate + bo + j), f32x4.mul(g, v128.load(f + o + j))));
      }
      for (; d < D; d++) {
        const j = (<usize>d) * 4;
        const g = load<f32>(dout + o + j);
        store<f32>(df + o + j, load<f32>(df + o + j) + g * load<f32>(gate + bo + j));
        store<f32>(dgate + bo + j, load<f32>(dgate + bo + j) + g * load<f32>(f + o + j));
      }
    }
  }
}
