/**
 * The SwiGLU expert on the wasm backend (formula: ref/swiglu.ts; kernels: wasm/assembly/swiglu.ts,
 * the gate in wasm/assembly/activations.ts): one expert on the packed GEMM split by columns, or
 * several experts side by side, each whole on one thread.
 */
import type { SwigluCall, SwigluBackwardCall, SwigluWeights } from '../../ref/swiglu.js';
import type { BackendHooks } from '../hooks.js';
import { gemm, split, packRows, packCols, packKN, sideBySide, largestFirst } from '../parallel.js';
import type { Call } from '../threads.js';

/** h = silu(g) ⊙ u over n elements, shared by the threads. */
export function siluGate(be: BackendHooks, h: number, g: number, u: number, n: number): void {
  split(be, 'swigluGate', n, 4, 8 * n, (lo, hi) => [h + lo * 4, g + lo * 4, u + lo * 4, hi - lo]);
}

/** dg, du from dh, g, u over n elements, shared by the threads. */
export function siluGateBackward(be: BackendHooks, dg: number, du: number, dh: number, g: number, u: number, n: number): void {
  split(be, 'swigluGateBackward', n, 4, 12 * n, (lo, hi) => [dg + lo * 4, du + lo * 4, dh + lo * 4, g + lo * 4, u + lo * 4, hi - lo]);
}

/** An expert's weights packed as B panels for the forward: Wgᵀ, Wuᵀ [D, F] and Wdᵀ [F, D] (held until the call ends). */
export interface PackedExpert {
  g: number;
  u: number;
  d: number;
}

export function packedExpert(be: BackendHooks, w: SwigluWeights, D: number, F: number): PackedExpert {
  return { g: be.packed(w.gate, F, D, 'nk'), u: be.packed(w.up, F, D, 'nk'), d: be.packed(w.down, D, F, 'nk') };
}

/**
 * The SwiGLU sequence on the host, written once: from the rows A [n, D] already packed into
 * ap, g = A·Wgᵀ and u = A·Wuᵀ [n, F], h = silu(g) ⊙ u, then h packed into ap and y = h·Wdᵀ
 * [n, D] (row stride D); each product split by columns between the threads. ap holds
 * packedASize(n, max(D, F)) floats.
 */
export function swigluPacked(be: BackendHooks, y: number, g: number, u: number, h: number, ap: number, w: PackedExpert, n: number, D: number, F: number): void {
  gemm(be, g, F, ap, w.g, n, F, D, true); // g = A Wgᵀ
  gemm(be, u, F, ap, w.u, n, F, D, true); // u = A Wuᵀ
  siluGate(be, h, g, u, n * F); // h = silu(g) ⊙ u
  packRows(be, ap, h, F, n, F);
  gemm(be, y, D, ap, w.d, n, D, F, true); // y = h Wdᵀ
}

// out[M,D] = (silu(x·Wgᵀ) ⊙ (x·Wuᵀ))·Wdᵀ
export function swiglu(be: BackendHooks, out: Float32Array, gate: Float32Array | null, up: Float32Array | null, x: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
  if (M * D === 0) return;
  if (F === 0) {
    out.fill(0, 0, M * D);
    return;
  }
  const e = be.exports;
  const w = packedExpert(be, { gate: wg, up: wu, down: wd }, D, F);
  be.scratch((s) => {
    const px = s.input(x, M * D);
    const pg = gate ? s.output(gate, M * F, 'none') : s.alloc(M * F);
    const pu = up ? s.output(up, M * F, 'none') : s.alloc(M * F);
    const ph = s.alloc(M * F);
    const po = s.output(out, M * D, 'none');
    const ap = s.alloc(e.packedASize(M, Math.max(D, F)));
    packRows(be, ap, px, D, M, D); // A = x
    swigluPacked(be, po, pg, pu, ph, ap, w, M, D, F);
  });
}

/**
 * Backward of swiglu (accumulates), from the saved g, u:
 *   dh = dy·Wd, dWd += dyᵀ·h; dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g);
 *   dx += dg·Wg + du·Wu, dWg += dgᵀ·x, dWu += duᵀ·x
 */
export function swigluBackward(be: BackendHooks, dx: Float32Array, dwg: Float32Array, dwu: Float32Array, dwd: Float32Array, dout: Float32Array, x: Float32Array, gate: Float32Array, up: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, M: number, D: number, F: number): void {
  if (M * D * F === 0) return;
  const e = be.exports;
  const bdT = be.packed(wd, D, F, 'kn');
  const bgT = be.packed(wg, F, D, 'kn');
  const buT = be.packed(wu, F, D, 'kn');
  const n = M * F;
  be.scratch((s) => {
    const pdo = s.input(dout, M * D);
    const px = s.input(x, M * D);
    const pg = s.input(gate, n);
    const pu = s.input(up, n);
    const ph = s.alloc(n);
    const pdh = s.alloc(n);
    const ap = s.alloc(e.packedASize(M, Math.max(D, F)));
    const apT = s.alloc(e.packedASize(Math.max(D, F), M));
    const bpT = s.alloc(e.packedBSize(Math.max(D, F), M));
    const pdg = s.alloc(n);
    const pdu = s.alloc(n);
    const pdx = s.output(dx, M * D, 'keep');
    const pdwg = s.output(dwg, F * D, 'keep');
    const pdwu = s.output(dwu, F * D, 'keep');
    const pdwd = s.output(dwd, D * F, 'keep');
    siluGate(be, ph, pg, pu, n); // h = silu(g) ⊙ u, recomputed
    packRows(be, ap, pdo, D, M, D);
    gemm(be, pdh, F, ap, bdT, M, F, D, true); // dh = dy·Wd
    packCols(be, apT, pdo, D, D, M);
    packKN(be, bpT, ph, F, F, M);
    gemm(be, pdwd, F, apT, bpT, D, F, M, false); // dWd += dyᵀ·h
    siluGateBackward(be, pdg, pdu, pdh, pg, pu, n);
    packRows(be, ap, pdg, F, M, F);
    gemm(be, pdx, D, ap, bgT, M, D, F, false); // dx += dg·Wg
    packRows(be, ap, pdu, F, M, F);
    gemm(be, pdx, D, ap, buT, M, D, F, false); // dx += du·Wu
    packKN(be, bpT, px, D, D, M); // B = x [M, D]
    packCols(be, apT, pdg, F, F, M);
    gemm(be, pdwg, D, apT, bpT, F, D, M, false); // dWg += dgᵀ·x
    packCols(be, apT, pdu, F, F, M);
    gemm(be, pdwu, D, apT, bpT, F, D, M, false); // dWu += duᵀ·x
  });
}

/**
 * Experts side by side, each whole on one thread (`swigluRowsForward`), largest first; when
 * they cannot be (one thread, one expert, one too large, shared outputs), one after the other,
 * each product split between the threads (`swiglu`).
 */
export function swigluExperts(be: BackendHooks, calls: SwigluCall[], D: number): void {
  const live = calls.filter((c) => c.M * D > 0 && c.F > 0);
  const flops = live.reduce((p, c) => p + 6 * c.M * D * c.F, 0);
  const ops = live.map((c): [Float32Array | null, boolean][] => [[c.out, true], [c.gate, true], [c.up, true], [c.x, false]]);
  if (!sideBySide(be, live.map((c) => c.M * c.F), ops, flops)) {
    for (const c of calls) swiglu(be, c.out, c.gate, c.up, c.x, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
    return;
  }
  const e = be.exports;
  const packed = live.map((c) => packedExpert(be, c.w, D, c.F));
  const nMax = Math.max(...live.map((c) => c.M));
  const fMax = Math.max(...live.map((c) => c.F));
  be.scratch((s) => {
    const args = live.map((c, i) => {
      const px = s.input(c.x, c.M * D);
      const pg = c.gate ? s.output(c.gate, c.M * c.F, 'none') : s.alloc(c.M * c.F);
      const pu = c.up ? s.output(c.up, c.M * c.F, 'none') : s.alloc(c.M * c.F);
      const po = s.output(c.out, c.M * D, 'none');
      return [po, pg, pu, px, c.M, D, c.F, packed[i].g, packed[i].u, packed[i].d, -1, -2, -3];
    });
    // per thread: h [nMax, fMax], packed A, the edge tile
    const scratch = Array.from({ length: be.threads }, (_, t) => [s.alloc(nMax * fMax), s.alloc(e.packedASize(nMax, Math.max(D, fMax))), be.tiles[t]]);
    be.runCalls(
      largestFirst(live.map((c) => c.M * c.F)).map((i): Call => ['swigluRowsForward', args[i]]),
      scratch,
    );
  });
}

/** Backward of swigluExperts (accumulates): side by side as the forward, or one after the other. */
export function swigluExpertsBackward(be: BackendHooks, calls: SwigluBackwardCall[], D: number): void {
  const live = calls.filter((c) => c.M * D * c.F > 0);
  const flops = live.reduce((p, c) => p + 12 * c.M * D * c.F, 0);
  const ops = live.map((c): [Float32Array | null, boolean][] => [[c.dx, true], [c.dw.gate, true], [c.dw.up, true], [c.dw.down, true], [c.dout, false], [c.x, false], [c.gate, false], [c.up, false]]);
  if (!sideBySide(be, live.map((c) => c.M * c.F), ops, flops)) {
    for (const c of calls) swigluBackward(be, c.dx, c.dw.gate, c.dw.up, c.dw.down, c.dout, c.x, c.gate, c.up, c.w.gate, c.w.up, c.w.down, c.M, D, c.F);
    return;
  }
  const e = be.exports;
  const packed = live.map((c) => [be.packed(c.w.down, D, c.F, 'kn'), be.packed(c.w.gate, c.F, D, 'kn'), be.packed(c.w.up, c.F, D, 'kn')]);
  const nMax = Math.max(...live.map((c) => c.M));
  const L = Math.max(D, ...live.map((c) => c.F));
  be.scratch((s) => {
    const args = live.map((c, i) => {
      const [M, F] = [c.M, c.F];
      const [pdo, px, pg, pu] = [s.input(c.dout, M * D), s.input(c.x, M * D), s.input(c.gate, M * F), s.input(c.up, M * F)];
      const pdx = s.output(c.dx, M * D, 'keep');
      const [pdwg, pdwu, pdwd] = [s.output(c.dw.gate, F * D, 'keep'), s.output(c.dw.up, F * D, 'keep'), s.output(c.dw.down, D * F, 'keep')];
      return [pdx, pdwg, pdwu, pdwd, pdo, px, pg, pu, M, D, F, ...packed[i], -1, -2, -3, -4, -5, -6, -7, -8];
    });
    // per thread: h, dh, dg, du [nMax, L]; packed A, packed Aᵀ, packed B; the edge tile
    const scratch = Array.from({ length: be.threads }, (_, t) => [
      ...[0, 1, 2, 3].map(() => s.alloc(nMax * L)),
      s.alloc(e.packedASize(nMax, L)),
      s.alloc(e.packedASize(L, nMax)),
      s.alloc(e.packedBSize(L, nMax)),
      be.tiles[t],
    ]);
    be.runCalls(
      largestFirst(live.map((c) => c.M * c.F)).map((i): Call => ['swigluRowsBackward', args[i]]),
      scratch,
    );
  });
}
