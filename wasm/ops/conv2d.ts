/**
 * 2-D convolution on the wasm backend (formula: ref/vae/conv2d.ts; kernel: wasm/assembly/conv2d.ts).
 * The weight [O, C·kh·kw] is packed once (the backend's weight cache); each image's output positions
 * are cut into ranges of whole blocks of positions (as many as keep a block's patches in L2) that the threads claim, each thread packing its
 * own patches (no column matrix) into its own scratch.
 */
import { checkConvShape, type Conv2dShape } from '../../ref/vae/conv2d.js';
import type { BackendHooks } from '../hooks.js';
import type { Call } from '../threads.js';


export function conv2d(h: BackendHooks, out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, s: Conv2dShape): void {
  const [Ho, Wo] = checkConvShape(s, 'wasm.conv2d'); // the operands were checked (ref/kernelChecks.ts)
  const { N, C, H, W, O, kh, kw } = s;
  const K = C * kh * kw;
  const P = Ho * Wo;
  if (N * O * P === 0) return;
  const bp = h.packed(w, O, K, 'nk');
  h.scratch((sc) => {
    const px = sc.input(x, N * C * H * W);
    const pb = b ? sc.input(b, O) : 0;
    const po = sc.output(out, N * O * P, 'none');
    const parts = h.parts(2 * N * P * O * K);
    const tiles = h.tiles;
    const ROWS = h.exports.conv2dBlockRows(K); // output positions per block: as many as keep a block's patches in L2
    const scratch = Array.from({ length: parts }, (_, t) => [sc.alloc(ROWS * K), sc.alloc(ROWS * O), tiles[t]]);
    const blocks = Math.ceil(P / ROWS);
    // about 4 ranges per thread and image: balanced, and few claims
    const per = parts === 1 ? blocks : Math.max(1, Math.ceil(blocks / (4 * parts)));
    const calls: Call[] = [];
    for (let n = 0; n < N; n++) {
      for (let q = 0; q < blocks; q += per) {
        calls.push(['conv2dRows', [po + n * O * P * 4, px + n * C * H * W * 4, bp, pb, C, H, W, O, kh, kw, s.stride, s.padTop, s.padLeft, Ho, Wo, q * ROWS, Math.min(P, (q + per) * ROWS), ROWS, -1, -2, -3]]);
      }
    }
    h.runCalls(calls, scratch); // on one thread when parts = 1 (one row of scratch)
  });
}
