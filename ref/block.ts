/**
 * The DiT-MoE block with adaLN-Zero conditioning (official `DiTBlock`):
 *   shift1, scale1, gate1, shift2, scale2, gate2 = Linear(silu(c)) chunked in 6     c [B, D] → 6 × [B, D]
 *   x = x + gate1 · Attn(modulate(LN(x), shift1, scale1))
 *   x = x + gate2 · MoE(modulate(LN(x), shift2, scale2))                         x [B, T, D] → [B, T, D]
 * LN is LayerNorm without affine, eps 1e-6. With zero modulation the block is the identity.
 */
import { tensorFrom, type Kernels } from './kernels.js';
import type { DiTConfig } from './config.js';
import { dims } from './config.js';
import type { Weights } from './weights.js';
import { selfAttentionForward, selfAttentionBackward, type AttentionWeights, type AttentionCache } from './selfAttention.js';
import { moeForward, moeBackward, type MoeWeights, type MoeCache, type MoeDims } from './moe.js';

export type Trace = (name: string, data: Float32Array | Int32Array, shape: number[]) => void;

export interface BlockWeights {
  attn: AttentionWeights;
  moe: MoeWeights;
  adaW: Float32Array; // [6D, D]
  adaB: Float32Array; // [6D]
}

/** Views of block i's weights in a parameter (or gradient) store. */
export function blockWeights(p: Weights, i: number, c: DiTConfig): BlockWeights {
  const b = `blocks.${i}.`;
  const flash = c.use_flash_attn;
  const attn: AttentionWeights = flash
    ? {
        qkvW: p.get(b + 'attn.Wqkv.weight'),
        qkvB: p.get(b + 'attn.Wqkv.bias'),
        projW: p.get(b + 'attn.out_proj.weight'),
        projB: p.get(b + 'attn.out_proj.bias'),
        qNorm: { w: p.get(b + 'attn.q_norm.weight'), b: p.get(b + 'attn.q_norm.bias') },
        kNorm: { w: p.get(b + 'attn.k_norm.weight'), b: p.get(b + 'attn.k_norm.bias') },
      }
    : { qkvW: p.get(b + 'attn.qkv.weight'), qkvB: p.get(b + 'attn.qkv.bias'), projW: p.get(b + 'attn.proj.weight'), projB: p.get(b + 'attn.proj.bias'), qNorm: null, kNorm: null };
  const swiglu = (pre: string) => ({ gate: p.get(pre + 'gate_proj.weight'), up: p.get(pre + 'up_proj.weight'), down: p.get(pre + 'down_proj.weight') });
  const moe: MoeWeights = {
    gate: p.get(b + 'moe.gate.weight'),
    experts: Array.from({ length: c.num_experts }, (_, e) => swiglu(`${b}moe.experts.${e}.`)),
    shared: dims(c).sharedWidth > 0 ? swiglu(`${b}moe.shared_experts.`) : null,
  };
  return { attn, moe, adaW: p.get(b + 'adaLN_modulation.1.weight'), adaB: p.get(b + 'adaLN_modulation.1.bias') };
}

export function moeDims(c: DiTConfig): MoeDims {
  const d = dims(c);
  return { D: d.D, E: c.num_experts, k: c.num_experts_per_tok, F: d.expertWidth, Fs: d.sharedWidth, normTopk: c.norm_topk_prob, alpha: c.aux_loss_alpha, seqAux: c.seq_aux };
}

/** Splits the adaLN output [B, n·D] into n arrays [B, D]. */
export function chunkModulation(mod: Float32Array, B: number, D: number, n: number): Float32Array[] {
  return Array.from({ length: n }, (_, j) => {
    const out = new Float32Array(B * D);
    for (let b = 0; b < B; b++) out.set(mod.subarray(b * n * D + j * D, b * n * D + (j + 1) * D), b * D);
    return out;
  });
}

/** The inverse of chunkModulation for gradients: n arrays [B, D] → [B, n·D]. */
export function unchunkModulation(chunks: Float32Array[], B: number, D: number): Float32Array {
  const n = chunks.length;
  const out = new Float32Array(B * n * D);
  for (let j = 0; j < n; j++) for (let b = 0; b < B; b++) out.set(chunks[j].subarray(b * D, (b + 1) * D), b * n * D + j * D);
  return out;
}

export interface BlockCache {
  x: Float32Array; // block input [B, T, D]
  mods: Float32Array[]; // 6 × [B, D]
  ln1: { mean: Float32Array; rstd: Float32Array; out: Float32Array };
  attnIn: Float32Array;
  attn: AttentionCache;
  attnOut: Float32Array;
  x1: Float32Array; // after the attention residual
  ln2: { mean: Float32Array; rstd: Float32Array; out: Float32Array };
  moeIn: Float32Array;
  moe: MoeCache;
  moeOut: Float32Array;
}

/**
 * Forward of one block. x [B, T, D] is read and the result written to `out`;
 * siluC = silu(c) [B, D] is shared by all blocks. Keeps what backward needs.
 */
export function blockForward(kern: Kernels, out: Float32Array, x: Float32Array, siluC: Float32Array, w: BlockWeights, c: DiTConfig, B: number, T: number, train: boolean, trace?: Trace, tracePrefix = ''): BlockCache {
  const D = c.hidden_size;
  const M = B * T;
  const mod = new Float32Array(B * 6 * D);
  kern.linear(mod, siluC, w.adaW, w.adaB, B, D, 6 * D);
  const mods = chunkModulation(mod, B, D, 6);
  const [shift1, scale1, gate1, shift2, scale2, gate2] = mods;

  const ln1 = { mean: kern.tensor(M), rstd: kern.tensor(M), out: kern.tensor(M * D) };
  kern.layerNorm(ln1.out, ln1.mean, ln1.rstd, x, null, null, M, D, 1e-6);
  const attnIn = kern.tensor(M * D);
  kern.modulate(attnIn, ln1.out, shift1, scale1, B, T, D);
  const attnOut = kern.tensor(M * D);
  const attn = selfAttentionForward(kern, attnOut, attnIn, w.attn, B, T, c.num_heads, D, train);
  const x1 = tensorFrom(kern, x);
  kern.gatedResidual(x1, attnOut, gate1, B, T, D);

  const ln2 = { mean: kern.tensor(M), rstd: kern.tensor(M), out: kern.tensor(M * D) };
  kern.layerNorm(ln2.out, ln2.mean, ln2.rstd, x1, null, null, M, D, 1e-6);
  const moeIn = kern.tensor(M * D);
  kern.modulate(moeIn, ln2.out, shift2, scale2, B, T, D);
  const moeOut = kern.tensor(M * D);
  const moe = moeForward(kern, moeOut, moeIn, w.moe, moeDims(c), B, T, train);
  out.set(x1);
  kern.gatedResidual(out, moeOut, gate2, B, T, D);

  if (trace) {
    const k = c.num_experts_per_tok;
    trace(`${tracePrefix}attn_in`, attnIn, [B, T, D]);
    trace(`${tracePrefix}attn`, attnOut, [B, T, D]);
    trace(`${tracePrefix}moe_in`, moeIn, [B, T, D]);
    trace(`${tracePrefix}router_scores`, moe.router.scores, [M, c.num_experts]);
    trace(`${tracePrefix}topk_idx`, moe.router.topkIdx, [M, k]);
    trace(`${tracePrefix}topk_weight`, moe.router.topkWeight, [M, k]);
    if (moe.shared) trace(`${tracePrefix}shared`, moe.shared, [B, T, D]);
    trace(`${tracePrefix}moe`, moeOut, [B, T, D]);
    trace(`${tracePrefix}out`, out, [B, T, D]);
  }
  return { x, mods, ln1, attnIn, attn, attnOut, x1, ln2, moeIn, moe, moeOut };
}

/**
 * Backward of blockForward (accumulates): dout [B, T, D] → dx [B, T, D], dSiluC [B, D] and the
 * block's weight gradients `g` (views in the gradient store). `daux` is the gradient of the
 * total loss with respect to this block's balance loss (1 in official training).
 */
export function blockBackward(kern: Kernels, dx: Float32Array, dSiluC: Float32Array, g: BlockWeights, dout: Float32Array, siluC: Float32Array, w: BlockWeights, cache: BlockCache, c: DiTConfig, B: number, T: number, daux: number): void {
  const D = c.hidden_size;
  const M = B * T;
  const [, scale1, gate1, , scale2, gate2] = cache.mods;
  const dmods = Array.from({ length: 6 }, () => new Float32Array(B * D));
  const [dshift1, dscale1, dgate1, dshift2, dscale2, dgate2] = dmods;

  // out = x1 + gate2 · moeOut
  const dx1 = tensorFrom(kern, dout);
  const dMoeOut = kern.tensor(M * D);
  kern.gatedResidualBackward(dMoeOut, dgate2, dout, cache.moeOut, gate2, B, T, D);
  const dMoeIn = kern.tensor(M * D);
  moeBackward(kern, dMoeIn, g.moe, dMoeOut, cache.moeIn, w.moe, cache.moe, moeDims(c), B, T, daux);
  const dln2 = kern.tensor(M * D);
  kern.modulateBackward(dln2, dshift2, dscale2, dMoeIn, cache.ln2.out, scale2, B, T, D);
  kern.layerNormBackward(dx1, null, null, dln2, cache.x1, null, cache.ln2.mean, cache.ln2.rstd, M, D);

  // x1 = x + gate1 · attnOut
  for (let i = 0; i < M * D; i++) dx[i] += dx1[i];
  const dAttnOut = kern.tensor(M * D);
  kern.gatedResidualBackward(dAttnOut, dgate1, dx1, cache.attnOut, gate1, B, T, D);
  const dAttnIn = kern.tensor(M * D);
  selfAttentionBackward(kern, dAttnIn, g.attn, dAttnOut, cache.attnIn, w.attn, cache.attn, B, T, c.num_heads, D);
  const dln1 = kern.tensor(M * D);
  kern.modulateBackward(dln1, dshift1, dscale1, dAttnIn, cache.ln1.out, scale1, B, T, D);
  kern.layerNormBackward(dx, null, null, dln1, cache.x, null, cache.ln1.mean, cache.ln1.rstd, M, D);

  // mod = Linear(silu(c))
  const dmod = unchunkModulation(dmods, B, D);
  kern.linearBackward(dSiluC, g.adaW, g.adaB, dmod, siluC, w.adaW, B, D, 6 * D);
}
