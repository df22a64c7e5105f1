/**
 * `--memory-budget <GB>`: how much memory a model may take. A model whose stored tensors, one
 * block widened to float32 and the wasm module's packed weights fit stays resident; one that does
 * not is streamed block by block (io/weightStore.ts), which needs two blocks' stored tensors and
 * their widened copies (the current one and the one read ahead), and the packed weights of one layer. A budget
 * below that, or a layer whose packed weights pass the wasm memory, is one line naming it.
 * The default is what the machine can spare now: 90% of the available memory (and of a cgroup's
 * limit when there is one), stated in the log line.
 */
import * as os from 'node:os';
import { Option } from 'commander';
import { DitMoeError } from '../core/errors.js';
import { dims, type DiTConfig } from '../ref/config.js';
import { paramSpecs } from '../ref/params.js';
import { numel } from '../core/tensor.js';
import type { TensorFile } from '../io/tensorFile.js';
import { scopeOf, storedBytes } from '../io/weightStore.js';
import { DEFAULT_WEIGHT_BUDGET } from '../wasm/weightCache.js';

const GB = 1e9;
/** The wasm module's 4 GiB, less what its activations and scratch may need at most. */
const WASM_WEIGHTS_MAX = DEFAULT_WEIGHT_BUDGET;

/** --memory-budget, an option of every command that loads a model. */
export function memoryBudgetOption(): Option {
  return new Option('--memory-budget <GB>', 'memory the model may take, in GB (default: 90% of what the machine has available); beyond it the blocks are streamed from the file').argParser((v) => {
    const x = Number(v);
    if (!(Number.isFinite(x) && x > 0)) throw new DitMoeError(`'${v}' is not a positive number of GB`, '--memory-budget');
    return x;
  });
}

/** What the machine can spare now, in bytes, and how that was found. */
export function defaultBudget(): { bytes: number; why: string } {
  let avail = os.freemem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  if (limit && limit > 0 && limit < avail) avail = limit;
  return { bytes: 0.9 * avail, why: `90% of the ${(avail / GB).toFixed(1)} GB available` };
}

/** Bytes of an [N, K] weight's packed panels (16-column panels, the last one padded). */
function packedBytes(N: number, K: number): number {
  return Math.ceil(N / 16) * 16 * K * 4;
}

export interface MemoryPlan {
  resident: boolean;
  /** The wasm weight cache's budget (bytes): the whole model packed when it fits, else the largest layer's. */
  wasmWeights: number;
  /** What was decided and why, for the log line. */
  line: string;
}

/**
 * Decides resident or streamed for `file` under `budgetGB` (undefined: the default), on the
 * wasm backend when `wasm`. Throws one line when even streaming does not fit.
 */
export function planMemory(file: TensorFile, config: DiTConfig, wasm: boolean, budgetGB?: number): MemoryPlan {
  const budget = budgetGB !== undefined ? { bytes: budgetGB * GB, why: `--memory-budget ${budgetGB}` } : defaultBudget();
  const stored = storedBytes(file, config);
  const d = dims(config);
  // the packed weights of the largest kernel call: an MoE layer's routed experts (or its largest linear)
  const expertsPacked = config.num_experts * (2 * packedBytes(d.expertWidth, d.D) + packedBytes(d.D, d.expertWidth));
  let allPacked = 0;
  let largestLinear = 0;
  let widenBlock = 0; // one block's tensors widened to float32 (16-bit dtypes only: float32 is used in place)
  const blockWiden = new Array<number>(config.depth).fill(0);
  for (const s of paramSpecs(config)) {
    if (s.shape.length === 2) {
      const p = packedBytes(s.shape[0], s.shape[1]);
      allPacked += p;
      if (!s.name.includes('.experts.')) largestLinear = Math.max(largestLinear, p);
    }
    const t = file.tensors.get(s.name);
    const scope = scopeOf(s.name, config.depth);
    if (t && t.dtype !== 'F32' && scope >= 0 && scope < config.depth) blockWiden[scope] += 4 * numel(s.shape);
  }
  widenBlock = Math.max(0, ...blockWiden);
  const layer = Math.max(expertsPacked, largestLinear);
  const mb = (b: number) => (b < GB ? `${(b / 1e6).toFixed(1)} MB` : `${(b / GB).toFixed(1)} GB`);
  if (wasm && layer > WASM_WEIGHTS_MAX) throw new DitMoeError(`one layer's packed weights take ${mb(layer)}, more than the ${mb(WASM_WEIGHTS_MAX)} the wasm backend's 4 GiB memory leaves for weights; use --backend ref`, file.where);
  const wholeFits = allPacked * 1.05 <= WASM_WEIGHTS_MAX;
  const wasmWeights = wasm ? (wholeFits ? WASM_WEIGHTS_MAX : Math.min(WASM_WEIGHTS_MAX, Math.ceil(layer * 1.1))) : 0;
  const wasmUse = wasm ? Math.min(wasmWeights, allPacked * 1.05) : 0;
  const fixed = stored.total - stored.blocks.reduce((a, b) => a + b, 0);
  const residentNeed = stored.total + widenBlock + wasmUse;
  const streamNeed = fixed + 2 * (stored.largestBlock + widenBlock) + (wasm ? Math.ceil(layer * 1.1) : 0); // the current block and the next, read ahead
  const head = `${file.where}: ${mb(stored.total)} of weights, memory budget ${mb(budget.bytes)} (${budget.why})`;
  if (residentNeed <= budget.bytes) return { resident: true, wasmWeights, line: `${head}: resident` };
  if (streamNeed > budget.bytes) throw new DitMoeError(`memory budget ${mb(budget.bytes)} (${budget.why}) is smaller than streaming one block needs: ${mb(streamNeed)} (two blocks of ${mb(stored.largestBlock)} as stored${widenBlock ? ` and ${mb(widenBlock)} widened` : ''}, ${wasm ? 'one layer packed, ' : ''}the embeddings)`, file.where);
  return { resident: false, wasmWeights: wasm ? Math.ceil(layer * 1.1) : 0, line: `${head}: streamed block by block (resident it would need ${mb(residentNeed)})` };
}
