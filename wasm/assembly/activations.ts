/**
 * Elementwise activations on f32x4, with a vector exp.
 *   exp4(x)  e^x per lane (Cephes expf: x = n·ln2 + r, degree-6 polynomial in r, 2^n by
 *            the exponent bits; relative error ≈ 2 ulp; x clamped to [-87.3, 88.7])
 *   silu(x)  = x · σ(x) = x / (1 + e^-x)
 *   silu'(x) = σ(x) · (1 + x · (1 - σ(x)))
 *   SwiGLU gate: h = silu(g) ⊙ u; backward dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g)
 * Each vector kernel has a scalar f64 twin (`...Naive`, Math.exp) as its oracle, also used
 * for the tails of arrays whose length is not a multiple of 4.
 */

// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmax/pmin are one instruction each (min/max with wasm's NaN rules are six); a NaN
  // passes through both and stays NaN
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.3)), f32x4.splat(88.7));
  // n = round(x·log2 e) by the 1.5·2^23 shift: the sum's low mantissa bits hold n as an
  // integer (no nearest, no saturating conversion, which is a long sequence on x64)
  const shifted = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
  const n = f32x4.sub(shifted, f32x4.splat(12582912.0));
  // r = x - n·ln2, ln2 split in two parts so n·C1 is exact
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
  // 2^n: n in [-126, 128]; split in two factors so n = 128 does not overflow the exponent
  const ni = i32x4.sub(shifted, i32x4.splat(0x4b400000));
  const h = i32x4.shr_s(ni, 1);
  const s1 = i32x4.shl(i32x4.add(h, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(i32x4.sub(ni, h), i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

/** e^x for every element: out[i] = exp(x[i]) (test hook for exp4). */
export function expArray(out: usize, x: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = (<usize>i) * 4;
    v128.store(out + o, exp4(v128.load(x + o)));
  }
  for (let i = n4; i < n; i++) {
    const o = (<usize>i) * 4;
    store<f32>(out + o, f32x4.extract_lane(exp4(f32x4.splat(load<f32>(x + o))), 0));
  }
}

// @ts-ignore: decorator
@inline function sigmoid4(x: v128): v128 {
  const one = f32x4.splat(1.0);
  return f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
}

// @ts-ignore: decorator
@inline function silu4(x: v128): v128 {
  return f32x4.mul(x, sigmoid4(x));
}

// @ts-ignore: decorator
@inline function siluGrad4(x: v128): v128 {
  const s = sigmoid4(x);
  const one = f32x4.splat(1.0);
  return f32x4.mul(s, f32x4.add(one, f32x4.mul(x, f32x4.sub(one, s))));
}

export function siluNaive(x: f64): f64 {
  return x / (1 + Math.exp(-x));
}

export function siluGradNaive(x: f64): f64 {
  const s = 1 / (1 + Math.exp(-x));
  return s * (1 + x * (1 - s));
}

/** out[i] = silu(x[i]) */
export function siluForward(out: usize, x: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = (<usize>i) * 4;
    v128.store(out + o, silu4(v128.load(x + o)));
  }
  for (let i = n4; i < n; i++) {
    const o = (<usize>i) * 4;
    store<f32>(out + o, <f32>siluNaive(load<f32>(x + o)));
  }
}

/** dx[i] += dout[i] · silu'(x[i]) */
export function siluBackward(dx: usize, dout: usize, x: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = (<usize>i) * 4;
    v128.store(dx + o, f32x4.add(v128.load(dx + o), f32x4.mul(v128.load(dout + o), siluGrad4(v128.load(x + o)))));
  }
  for (let i = n4; i < n; i++) {
    const o = (<usize>i) * 4;
    store<f32>(dx + o, <f32>(<f64>load<f32>(dx + o) + <f64>load<f32>(dout + o) * siluGradNaive(load<f32>(x + o))));
  }
}

/** h[i] = silu(g[i]) · u[i]  (the SwiGLU gate) */
export function swigluGate(h: usize, g: usize, u: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = (<usize>i) * 4;
    v128.store(h + o, f32x4.mul(silu4(v128.load(g + o)), v128.load(u + o)));
  }
  for (let i = n4; i < n; i++) {
    const o = (<usize>i) * 4;
    store<f32>(h + o, <f32>(siluNaive(load<f32>(g + o)) * <f64>load<f32>(u + o)));
  }
}

/** Backward of swigluGate (overwrites): dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g). */
export function swigluGateBackward(dg: usize, du: usize, dh: usize, g: usize, u: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = (<usize>i) * 4;
    const gv = v128.load(g + o);
    const dv = v128.load(dh + o);
    const s = sigmoid4(gv);
    const one = f32x4.splat(1.0);
    const grad = f32x4.mul(s, f32x4.add(one, f32x4.mul(gv, f32x4.sub(one, s))));
    v128.store(dg + o, f32x4.mul(f32x4.mul(dv, v128.load(u + o)), grad));
    v128.store(du + o, f32x4.mul(dv, f32x4.mul(gv, s)));
  }
  for (let i = n4; i < n; i++) {
    const o = (<usize>i) * 4;
    const gv: f64 = load<f32>(g + o);
    const dv: f64 = load<f32>(dh + o);
    store<f32>(dg + o, <f32>(dv * <f64>load<f32>(u + o) * siluGradNaive(gv)));
    store<f32>(du + o, <f32>(dv * siluNaive(gv)));
  }
}
