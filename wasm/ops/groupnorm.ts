/**
 * GroupNorm (+ SiLU) on the wasm backend (formula: ref/vae/groupnorm.ts; kernel:
 * wasm/assembly/groupnorm.ts): the N·G (image, group) pairs are independent, so the threads share them.
 */
import type { BackendHooks } from '../hooks.js';

export function groupNorm(h: BackendHooks, out: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null, N: number, C: number, S: number, G: number, eps: number, silu: boolean): void {
  const n = N * C * S;
  if (n === 0) return;
  h.scratch((sc) => {
    const px = sc.input(x, n);
    const pw = w ? sc.input(w, C) : 0;
    const pb = b ? sc.input(b, C) : 0;
    const po = sc.output(out, n, 'none');
    const groups = N * G;
    const parts = Math.min(groups, h.parts(12 * n));
    const args = (g0: number, g1: number): [number, number, number, number, number, number, number, number, number, number, number] => [po, px, pw, pb, C, S, G, eps, silu ? 1 : 0, g0, g1];
    if (parts === 1) {
      h.exports.groupNormGroups(...args(0, groups));
      return;
    }
    const per = Math.ceil(groups / parts);
    const calls: ['groupNormGroups', number[]][] = [];
    for (let g = 0; g < groups; g += per) calls.push(['groupNormGroups', args(g, Math.min(groups, g + per))]);
    h.runCalls(
      calls,
      Array.from({ length: parts }, () => []),
    );
  });
}
