/**
 * What the host needs to know about the module itself. The memory is imported (the host's
 * `WebAssembly.Memory`); the module's static data ends at `__heap_base`, and the host's
 * arena starts there.
 */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * The machine's f32x4 mul+add throughput, for the bench to calibrate against (GFLOP/s =
 * 64·n / time): 8 accumulators, each += a product of loop-invariant registers, no loads.
 * Returns a lane so the work is not optimised away.
 */
export function simdPeak(n: i32, x: f32): f32 {
  let c0 = f32x4.splat(x);
  let c1 = f32x4.splat(x + 1);
  let c2 = f32x4.splat(x + 2);
  let c3 = f32x4.splat(x + 3);
  let c4 = f32x4.splat(x + 4);
  let c5 = f32x4.splat(x + 5);
  let c6 = f32x4.splat(x + 6);
  let c7 = f32x4.splat(x + 7);
  const a = f32x4.splat(x * 0.999);
  const b = f32x4.splat(x * 1e-7);
  const d = f32x4.splat(x * 1.0001);
  for (let i = 0; i < n; i++) {
    c0 = f32x4.add(c0, f32x4.mul(a, b));
    c1 = f32x4.add(c1, f32x4.mul(a, d));
    c2 = f32x4.add(c2, f32x4.mul(d, b));
    c3 = f32x4.add(c3, f32x4.mul(b, b));
    c4 = f32x4.add(c4, f32x4.mul(a, a));
    c5 = f32x4.add(c5, f32x4.mul(d, d));
    c6 = f32x4.add(c6, f32x4.mul(b, a));
    c7 = f32x4.add(c7, f32x4.mul(b, d));
  }
  const s = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7)));
  return f32x4.extract_lane(s, 0);
}
