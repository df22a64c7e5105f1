/**
 * Weight initialisation as the official `DiT.initialize_weights`:
 *   every nn.Linear (attention, experts, shared experts, adaLN, final): xavier_uniform, bias 0
 *     U(-a, a), a = √(6 / (fan_in + fan_out))
 *   router (`MoEGate.weight`, a bare Parameter): kaiming_uniform(a = √5) = U(-1/√fan_in, 1/√fan_in)
 *   patch embedding: xavier_uniform on the weight viewed as [D, C·p·p], bias 0
 *   label table: N(0, 0.02); timestep MLP weights: N(0, 0.02), biases 0
 *   adaLN modulation of every block, and the final layer (adaLN and linear): zero (adaLN-Zero)
 *   q/k LayerNorm (flash layout): weight 1, bias 0;  pos_embed: the fixed 2-D sin-cos table
 * Deterministic from the seed (our xoshiro128** stream, not PyTorch's).
 */
import type { DiTConfig } from './config.js';
import { dims } from './config.js';
import { ParamStore, paramSpecs } from './params.js';
import { posEmbed2d } from './posEmbed.js';
import { makeRng, type Rng } from './diffusion/rng.js';

function uniform(out: Float32Array, bound: number, rng: Rng): void {
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.uniform() - 1) * bound;
}

function normal(out: Float32Array, std: number, rng: Rng): void {
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * std;
}

export function initializeWeights(c: DiTConfig, seed: number): ParamStore {
  const rng = makeRng(seed);
  const p = new ParamStore(paramSpecs(c));
  for (const s of p.specs) {
    const w = p.get(s.name);
    const [fanOut, ...rest] = s.shape;
    const fanIn = rest.reduce((a, b) => a * b, 1);
    if (s.name === 'pos_embed') w.set(posEmbed2d(c.hidden_size, dims(c).gridSize));
    else if (/adaLN_modulation|final_layer\.linear/.test(s.name)) w.fill(0);
    else if (/_norm\.weight$/.test(s.name)) w.fill(1);
    else if (s.name.endsWith('.bias')) w.fill(0);
    else if (s.name === 'y_embedder.embedding_table.weight' || s.name.startsWith('t_embedder.mlp.')) normal(w, 0.02, rng);
    else if (s.name.endsWith('moe.gate.weight')) uniform(w, 1 / Math.sqrt(fanIn), rng);
    else uniform(w, Math.sqrt(6 / (fanIn + fanOut)), rng); // xavier_uniform (linear layers, patch embedding)
  }
  return p;
}
