/**
 * Multi-head self-attention on the wasm backend (formula: ref/attention.ts; kernels:
 * wasm/assembly/attention.ts): one call per head, heads shared by the threads.
 */
import type { BackendHooks } from '../hooks.js';
import type { Call } from '../threads.js';

// out[B,T,H·Dh] = softmax(q kᵀ/√Dh) v per head, from qkv [B, T, 3, H, Dh]
export function attention(be: BackendHooks, out: Float32Array, probs: Float32Array | null, qkv: Float32Array, B: number, T: number, H: number, Dh: number): void {
  const D = H * Dh;
  if (B * T * H === 0) return;
  const e = be.exports;
  const scale = 1 / Math.sqrt(Dh);
  const L = Math.max(T, Dh);
  // query rows per tile of the fused eval forward (R·T·4 bytes of S/P: 16 KiB at T = 256)
  const R = 16;
  be.scratch((s) => {
    const pq = s.input(qkv, B * T * 3 * D);
    const po = s.output(out, B * T * D, 'none');
    const pp = probs ? s.output(probs, B * H * T * T, 'none') : 0;
    const parts = be.parts(4 * B * H * T * T * Dh);
    // each thread its own scratch. With probs (training), P goes straight to its slice:
    // packed A, packed B, the edge tile. Without (eval, the fused forward): the [R, T] tile of
    // S and P, packed A of R rows, packed K, packed V, the edge tile: O(R·T + T·Dh), not T×T.
    const scratch = Array.from({ length: parts }, () =>
      probs
        ? [s.alloc(e.packedASize(T, L)), s.alloc(e.packedBSize(L, L)), s.alloc(32)]
        : [s.alloc(R * T), s.alloc(e.packedASize(R, L)), s.alloc(e.packedBSize(T, Dh)), s.alloc(e.packedBSize(Dh, T)), s.alloc(32)],
    );
    const calls: Call[] = [];
    for (let j = 0; j < B * H; j++) {
      const b = Math.floor(j / H);
      const h = j % H;
      const q = pq + (b * T * 3 * D + h * Dh) * 4;
      const o = po + (b * T * D + h * Dh) * 4;
      if (probs) calls.push(['attentionHeadForward', [o, D, pp + j * T * T * 4, q, q + D * 4, q + 2 * D * 4, 3 * D, T, Dh, scale, -1, -2, -3]]);
      else calls.push(['attentionHeadForwardTiled', [o, D, q, q + D * 4, q + 2 * D * 4, 3 * D, T, Dh, scale, R, -1, -2, -3, -4, -5]]);
    }
    be.runCalls(calls, scratch);
  });
}

export function attentionBackward(be: BackendHooks, dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, probs: Float32Array, B: number, T: number, H: number, Dh: number): void {
  const D = H * Dh;
  if (B * T * H * Dh === 0) return;
  const e = be.exports;
  const scale = 1 / Math.sqrt(Dh);
  const L = Math.max(T, Dh);
  be.scratch((s) => {
    const pdq = s.output(dqkv, B * T * 3 * D, 'keep');
    const pdo = s.input(dout, B * T * D);
    const pq = s.input(qkv, B * T * 3 * D);
    const pp = s.input(probs, B * H * T * T);
    const parts = be.parts(8 * B * H * T * T * Dh);
    const scratch = Array.from({ length: parts }, () => [s.alloc(T * T), s.alloc(e.packedASize(L, L)), s.alloc(e.packedBSize(L, L)), s.alloc(32)]);
    const calls: Call[] = [];
    for (let j = 0; j < B * H; j++) {
      const b = Math.floor(j / H);
      const h = j % H;
      const off = (b * T * 3 * D + h * Dh) * 4;
      const dq = pdq + off;
      const q = pq + off;
      // heads write disjoint columns of dqkv: no two threads touch the same element
      calls.push(['attentionHeadBackward', [dq, dq + D * 4, dq + 2 * D * 4, 3 * D, pdo + (b * T * D + h * Dh) * 4, D, q, q + D * 4, q + 2 * D * 4, 3 * D, pp + j * T * T * 4, T, Dh, scale, -1, -2, -3, -4]]);
    }
    be.runCalls(calls, scratch);
  });
}
