/**
 * The parameter table (llm.c style): every tensor of the official `state_dict`, by name and
 * shape, in one Float32Array, each parameter a view into it. A checkpoint's order, the
 * optimiser step and zeroing gradients are each one loop over this buffer.
 * `pos_embed` is fixed (requires_grad = False): stored, never trained.
 */
import type { DiTConfig } from './config.js';
import { dims } from './config.js';
import { numel } from '../core/tensor.js';

export interface ParamSpec {
  name: string;
  shape: number[];
  trainable: boolean;
}

/** The official state_dict names and shapes for a config, in the official order. */
export function paramSpecs(c: DiTConfig): ParamSpec[] {
  const d = dims(c);
  const D = d.D;
  const P = (name: string, shape: number[], trainable = true): ParamSpec => ({ name, shape, trainable });
  const specs: ParamSpec[] = [
    P('pos_embed', [1, d.T, D], false),
    P('x_embedder.proj.weight', [D, c.in_channels, c.patch_size, c.patch_size]),
    P('x_embedder.proj.bias', [D]),
    P('t_embedder.mlp.0.weight', [D, c.frequency_embedding_size]),
    P('t_embedder.mlp.0.bias', [D]),
    P('t_embedder.mlp.2.weight', [D, D]),
    P('t_embedder.mlp.2.bias', [D]),
    P('y_embedder.embedding_table.weight', [d.numLabels, D]),
  ];
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}.`;
    if (c.use_flash_attn) {
      specs.push(P(b + 'attn.Wqkv.weight', [3 * D, D]), P(b + 'attn.Wqkv.bias', [3 * D]));
      specs.push(P(b + 'attn.q_norm.weight', [d.headDim]), P(b + 'attn.q_norm.bias', [d.headDim]));
      specs.push(P(b + 'attn.k_norm.weight', [d.headDim]), P(b + 'attn.k_norm.bias', [d.headDim]));
      specs.push(P(b + 'attn.out_proj.weight', [D, D]), P(b + 'attn.out_proj.bias', [D]));
    } else {
      specs.push(P(b + 'attn.qkv.weight', [3 * D, D]), P(b + 'attn.qkv.bias', [3 * D]));
      specs.push(P(b + 'attn.proj.weight', [D, D]), P(b + 'attn.proj.bias', [D]));
    }
    for (let e = 0; e < c.num_experts; e++) {
      const x = `${b}moe.experts.${e}.`;
      specs.push(P(x + 'gate_proj.weight', [d.expertWidth, D]), P(x + 'up_proj.weight', [d.expertWidth, D]), P(x + 'down_proj.weight', [D, d.expertWidth]));
    }
    specs.push(P(b + 'moe.gate.weight', [c.num_experts, D]));
    if (d.sharedWidth > 0) {
      const x = `${b}moe.shared_experts.`;
      specs.push(P(x + 'gate_proj.weight', [d.sharedWidth, D]), P(x + 'up_proj.weight', [d.sharedWidth, D]), P(x + 'down_proj.weight', [D, d.sharedWidth]));
    }
    specs.push(P(b + 'adaLN_modulation.1.weight', [6 * D, D]), P(b + 'adaLN_modulation.1.bias', [6 * D]));
  }
  specs.push(P('final_layer.linear.weight', [c.patch_size * c.patch_size * d.outChannels, D]), P('final_layer.linear.bias', [c.patch_size * c.patch_size * d.outChannels]));
  specs.push(P('final_layer.adaLN_modulation.1.weight', [2 * D, D]), P('final_layer.adaLN_modulation.1.bias', [2 * D]));
  return specs;
}

/** All parameters in one buffer; `get(name)` is a view. A gradient store has the same layout. */
export class ParamStore {
  readonly data: Float32Array;
  readonly offsets = new Map<string, number>();
  private readonly views = new Map<string, Float32Array>();

  constructor(readonly specs: ParamSpec[], data?: Float32Array) {
    let off = 0;
    for (const s of specs) {
      this.offsets.set(s.name, off);
      off += numel(s.shape);
    }
    this.data = data ?? new Float32Array(off);
    if (this.data.length !== off) throw new Error(`parameter buffer has ${this.data.length} elements, the table needs ${off}`);
    for (const s of specs) {
      const o = this.offsets.get(s.name)!;
      this.views.set(s.name, this.data.subarray(o, o + numel(s.shape)));
    }
  }

  get(name: string): Float32Array {
    const v = this.views.get(name);
    if (!v) throw new Error(`no parameter named ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.views.has(name);
  }

  /** A zeroed store of the same layout (for gradients, optimiser moments). */
  zerosLike(): ParamStore {
    return new ParamStore(this.specs);
  }
}
