/**
 * MoE dispatch and combine on the wasm backend (formulas: ref/moeExperts.ts; kernels:
 * wasm/assembly/moe.ts): gather, weighted scatter-add, and the routed experts of a layer.
 */
import type { SwigluWeights } from '../../ref/swiglu.js';
import { dispatchByExpert } from '../../ref/moeExperts.js';
import type { BackendHooks } from '../hooks.js';
import { largestFirst } from '../parallel.js';
import { packedExpert, swigluPacked } from './swiglu.js';
import type { Call } from '../threads.js';

// out[r, :] = x[slots[r] / k, :]
export function gatherRows(be: BackendHooks, out: Float32Array, x: Float32Array, slots: Int32Array, k: number, D: number): void {
  const [n, M] = [slots.length, D > 0 ? Math.floor(x.length / D) : 0];
  if (n * D === 0) return;
  be.scratch((s) => {
    const [px, ps] = [s.input(x, M * D), s.putI32(slots)];
    be.exports.gatherRows(s.output(out, n * D, 'none'), px, D, ps, k, n, D);
  });
}

// out[slots[r] / k, :] += weight[slots[r]] · y[r, :]
export function scatterAddRows(be: BackendHooks, out: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array | null, k: number, D: number): void {
  const [n, M] = [slots.length, D > 0 ? Math.floor(out.length / D) : 0];
  if (n * D === 0) return;
  be.scratch((s) => {
    const [py, ps, pw] = [s.input(y, n * D), s.putI32(slots), weight ? s.input(weight, weight.length) : 0];
    be.exports.scatterAddRows(s.output(out, M * D, 'keep'), D, py, ps, pw, k, n, D);
  });
}

// dy[r, :] = weight[s]·dout[m, :], dweight[s] = dout[m, :]·y[r, :]
export function scatterAddRowsBackward(be: BackendHooks, dy: Float32Array, dweight: Float32Array, dout: Float32Array, y: Float32Array, slots: Int32Array, weight: Float32Array, k: number, D: number): void {
  const [n, M] = [slots.length, D > 0 ? Math.floor(dout.length / D) : 0];
  if (n === 0) return;
  if (D === 0) {
    for (const s of slots) dweight[s] = 0; // an empty dot product
    return;
  }
  be.scratch((s) => {
    const [pdo, py, pw, ps] = [s.input(dout, M * D), s.input(y, n * D), s.input(weight, weight.length), s.putI32(slots)];
    const [pdy, pdw] = [s.output(dy, n * D, 'none'), s.output(dweight, dweight.length, 'keep')];
    be.exports.scatterAddRowsBackward(pdy, pdw, pdo, D, py, ps, pw, k, n, D);
  });
}

/**
 * out[m,:] = Σ_j weight[m,j] · Expert_{idx[m,j]}(x[m,:]): x, the slots and the weights copied
 * in once; each expert whole in one call (`expertForward`: its rows gathered straight into
 * its packed A, the SwiGLU on the packed GEMM); then the weighted rows scatter-added in
 * expert order (the order of ref), out copied back once. On several threads the experts are
 * shared out whole when none has more rows than a thread's share, else each expert's
 * products are split by columns as every product is.
 */
export function moeExperts(be: BackendHooks, out: Float32Array, x: Float32Array, topkIdx: Int32Array, topkWeight: Float32Array, experts: SwigluWeights[], M: number, D: number, F: number, k: number): void {
  const E = experts.length;
  if (M * D === 0) return;
  if (F === 0) {
    out.fill(0, 0, M * D);
    return;
  }
  const e = be.exports;
  const groups = dispatchByExpert(topkIdx.subarray(0, M * k), E)
    .map((slots, i) => ({ slots, w: experts[i] }))
    .filter((g) => g.slots.length > 0);
  const packed = groups.map(({ w }) => packedExpert(be, w, D, F));
  const nMax = Math.max(...groups.map((g) => g.slots.length));
  const parts = be.parts(6 * M * k * D * F);
  const whole = parts === 1 || nMax * parts <= M * k; // every expert within a thread's share
  be.scratch((s) => {
    const px = s.input(x, M * D);
    const pw = s.input(topkWeight, M * k);
    const po = s.output(out, M * D, 'zero');
    const slots = groups.map((g) => s.putI32(g.slots));
    const ys = groups.map((g) => s.alloc(g.slots.length * D));
    if (whole) {
      // per thread: g, u, h [nMax, F], packed A, the edge tile
      const scratch = Array.from({ length: parts }, (_, t) => [s.alloc(nMax * F), s.alloc(nMax * F), s.alloc(nMax * F), s.alloc(e.packedASize(nMax, Math.max(D, F))), be.tiles[t]]);
      const calls: Call[] = largestFirst(groups.map((g) => g.slots.length)).map((i) => ['expertForward', [ys[i], px, slots[i], k, groups[i].slots.length, D, F, packed[i].g, packed[i].u, packed[i].d, -1, -2, -3, -4, -5]]);
      be.runCalls(calls, scratch);
    } else {
      const [pg, pu, ph] = [s.alloc(nMax * F), s.alloc(nMax * F), s.alloc(nMax * F)];
      const ap = s.alloc(e.packedASize(nMax, Math.max(D, F)));
      groups.forEach((g, i) => {
        const n = g.slots.length;
        e.packARowsGather(ap, px, D, slots[i], k, n, D); // A = x[slots / k]
        swigluPacked(be, ys[i], pg, pu, ph, ap, packed[i], n, D, F);
      });
    }
    groups.forEach((g, i) => e.scatterAddRows(po, D, ys[i], slots[i], pw, k, g.slots.length, D)); // out[slot / k] += weight · y
  });
}
