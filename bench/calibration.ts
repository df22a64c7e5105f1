/**
 * Calibration of this machine at the moment of a bench run, so a table can say what share of
 * the core's own ceiling it reaches (the machine is a shared VM whose speed drifts by 20%
 * over an hour; a figure is only comparable with a ceiling measured in the same run):
 *   l1MicroKernelRate  our GEMM's 2×16 micro-kernel on operands that stay in L1
 *                      (16×256 · 256×16): the ceiling of the packed GEMM
 *   registerPeak       f32x4 mul + add with no memory traffic: the ceiling of any kernel
 */
import { webAssembly } from '../wasm/webassembly.js';
import type { WasmKernels } from '../wasm/backend.js';

/** Both ceilings of this moment, in GFLOP/s per core. */
export interface Ceilings {
  l1: number;
  reg: number;
}

/** A function measuring both ceilings now (call it before and after a table). */
export async function ceilings(wasm: WasmKernels): Promise<() => Ceilings> {
  const peak = await registerPeak();
  return () => ({ l1: l1MicroKernelRate(wasm), reg: peak(40) });
}

/** GFLOP/s of the fastest of 40 runs of 200 micro-kernel products on L1-resident operands. */
function l1MicroKernelRate(wasm: WasmKernels): number {
  const e = wasm.exports;
  const a = wasm.arena;
  const [M, K, N] = [16, 256, 16];
  const ap = a.zeros(e.packedASize(M, K));
  const bp = a.zeros(e.packedBSize(N, K));
  const c = a.zeros(M * N);
  const tile = a.alloc(32);
  let best = 0;
  for (let t = 0; t < 40; t++) {
    const t0 = performance.now();
    for (let r = 0; r < 200; r++) e.gemmPacked(c, N, ap, bp, M, N, K, tile, 0); // C += A·B: the micro-kernel reads its C tile
    best = Math.max(best, (200 * 2 * M * N * K) / ((performance.now() - t0) / 1e3) / 1e9);
  }
  for (const p of [ap, bp, c, tile]) a.release(p);
  return best;
}

/** Independent chains of the register-peak loop (14 v128 locals with a and b: V8 keeps 15 XMM registers). */
export const PEAK_CHAINS = 12;

/**
 * The register peak of f32x4 mul + add on this core: a wasm module written here byte by byte,
 *   (func (export "peak") (param $n i32) (param $s f32) (result f32)
 *     a = b = splat(s); acc[0..11] = splat(s)
 *     loop: acc[i] = f32x4.add(f32x4.mul(acc[i], a), b) for i < 12; br_if (n -= 1)
 *     return the sum of lane 0 of every acc)
 * Every mul and add is a distinct operation on a loop-carried value, so V8 can neither
 * merge nor hoist any of them, and nothing touches memory. 12 chains, not 8: one chain's
 * mul + add latency is ~6 cycles on this core, so 8 chains (16 operations in flight) stay
 * latency-bound (~36 GFLOP/s here) and 12 (24 in flight) fill the two FMUL and two FADD
 * pipes. 8 accumulators with the product off the chain (acc += x·y) measure the same ~55,
 * but there the 8 products are one and the same, which V8 may compute once.
 */
async function registerPeak(): Promise<(runs: number) => number> {
  const uleb = (v: number): number[] => {
    const o: number[] = [];
    do {
      const byte = v & 0x7f;
      v >>>= 7;
      o.push(v ? byte | 0x80 : byte);
    } while (v);
    return o;
  };
  const get = (i: number) => [0x20, ...uleb(i)]; // local.get
  const set = (i: number) => [0x21, ...uleb(i)]; // local.set
  const SPLAT = [0xfd, 0x13]; // f32x4.splat
  const ADD = [0xfd, 0xe4, 0x01]; // f32x4.add
  const MUL = [0xfd, 0xe6, 0x01]; // f32x4.mul
  const LANE0 = [0xfd, 0x1f, 0x00]; // f32x4.extract_lane 0
  const [n, s, a, b] = [0, 1, 2, 3]; // params n (i32), s (f32); locals a, b, then the accumulators (v128)
  const acc = Array.from({ length: PEAK_CHAINS }, (_, i) => 4 + i);
  const body: number[] = [];
  for (const r of [a, b, ...acc]) body.push(...get(s), ...SPLAT, ...set(r));
  body.push(0x03, 0x40); // loop (no result)
  for (const r of acc) body.push(...get(r), ...get(a), ...MUL, ...get(b), ...ADD, ...set(r));
  body.push(...get(n), 0x41, 0x01, 0x6b, 0x22, ...uleb(n), 0x0d, 0x00, 0x0b); // n = n - 1 (i32.const 1, i32.sub, local.tee); br_if 0; end
  body.push(...get(acc[0]), ...LANE0);
  for (const r of acc.slice(1)) body.push(...get(r), ...LANE0, 0x92); // f32.add
  body.push(0x0b); // end
  const func = [0x01, ...uleb(2 + PEAK_CHAINS), 0x7b, ...body]; // one group of locals: 2 + 12 v128
  const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
  const bytes = new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7d, 0x01, 0x7d]), // types: (i32, f32) -> f32
    ...section(3, [0x01, 0x00]), // functions: one of type 0
    ...section(7, [0x01, 0x04, ...new TextEncoder().encode('peak'), 0x00, 0x00]), // export "peak" = func 0
    ...section(10, [0x01, ...uleb(func.length), ...func]), // code
  ]);
  const api = webAssembly();
  if (!api) throw new Error('register peak: no WebAssembly in this runtime');
  const instance = new api.Instance(await api.compile(bytes), {});
  const peak = instance.exports.peak as (n: number, s: number) => number;
  const iters = 250_000; // 24 M flop, ~0.45 ms at 55 GFLOP/s
  const s0 = 0.999; // acc → acc·0.999 + 0.999 stays finite and normal
  const warm = performance.now();
  while (performance.now() - warm < 100) peak(1000, s0); // past the tier-up from Liftoff to TurboFan
  return (runs) => {
    let best = 0;
    for (let t = 0; t < runs; t++) {
      const t0 = performance.now();
      const r = peak(iters, s0);
      const dt = (performance.now() - t0) / 1e3;
      if (!Number.isFinite(r)) throw new Error('register peak: non-finite result');
      best = Math.max(best, (iters * PEAK_CHAINS * 2 * 4) / dt / 1e9);
    }
    return best;
  };
}

