/**
 * Judging a result against a golden file: for every output tensor of the golden file
 * (everything but `in.*` and `w.*`), max |result − golden| and that error relative to
 * max(1, max|golden|). Integer tensors (top-k indices, timestep maps) must be equal.
 * Default tolerances by kind of tensor, each stated where it is chosen:
 *   float64 (schedules)                   1e-12  float64 arithmetic on the same formulas
 *   grad.*, rfgrad.*, adamw2.*, samplers  1e-3   long float32 chains (issue 4, issue 3)
 *   solvers (DPM-Solver(++), Heun)        1e-3   whole sampling loops (issue 15)
 *   everything else                       2e-4   one float32 forward (issue 2)
 */
import type { SafeTensors, StTensor } from '../io/safetensors.js';
import { asNumbers } from '../io/safetensors.js';
import { indexStr } from '../core/tensor.js';

export interface CompareLine {
  name: string;
  status: 'pass' | 'fail' | 'missing' | 'shape';
  maxAbs: number;
  rel: number;
  rtol: number;
  detail?: string;
}

export function defaultRtol(name: string, golden: StTensor, kind?: string): number {
  if (golden.dtype === 'F64') return 1e-12;
  if (/^(grad|rfgrad|adamw2)\./.test(name) || name === 'out.grad_x') return 1e-3;
  if (kind === 'sample') return 1e-3;
  // the whole DPM-Solver / Heun loop: data predictions (x − σε)/α amplify float32 differences of the
  // model by up to 1/α ≈ 150 at t = 1 (issue 15 asks 1e-3; measured ≤ 1.1e-6 on ref and wasm)
  if (kind === 'solvers') return 1e-3;
  return 2e-4;
}

/**
 * Judges one tensor. An element where one side is non-finite and the other is not (or both are
 * infinite with opposite signs) fails whatever the tolerance, and is named; NaN on both sides,
 * or the same infinity, is agreement (a golden value may be deliberately non-finite). Among
 * finite elements the largest |result − golden| is named when it fails.
 */
function judge(name: string, a: ArrayLike<number>, b: ArrayLike<number>, shape: readonly number[], tol: number, exact: boolean): CompareLine {
  let scale = 1;
  for (let i = 0; i < b.length; i++) if (Number.isFinite(b[i])) scale = Math.max(scale, Math.abs(b[i]));
  let maxAbs = 0;
  let at = -1;
  for (let i = 0; i < b.length; i++) {
    const x = a[i];
    const g = b[i];
    if (!Number.isFinite(x) || !Number.isFinite(g)) {
      if (Object.is(x, g) || (Number.isNaN(x) && Number.isNaN(g))) continue;
      const detail = `element ${indexStr(i, shape)} is ${x}, golden ${g}`;
      return { name, status: 'fail', maxAbs: NaN, rel: NaN, rtol: exact ? 0 : tol, detail };
    }
    const d = Math.abs(x - g);
    if (d > maxAbs) {
      maxAbs = d;
      at = i;
    }
  }
  const rel = maxAbs / scale;
  const ok = exact ? maxAbs === 0 : rel <= tol;
  const line: CompareLine = { name, status: ok ? 'pass' : 'fail', maxAbs, rel, rtol: exact ? 0 : tol };
  if (!ok) line.detail = `worst at element ${indexStr(at, shape)}: ${a[at]}, golden ${b[at]}`;
  return line;
}

export function compareTensors(result: SafeTensors, golden: SafeTensors, rtol?: number): CompareLine[] {
  const lines: CompareLine[] = [];
  const kind = golden.metadata.kind;
  const names = [...golden.tensors.keys()].filter((n) => !n.startsWith('in.') && !n.startsWith('w.')).sort();
  for (const name of names) {
    const g = golden.tensors.get(name)!;
    const tol = rtol ?? defaultRtol(name, g, kind);
    const r = result.tensors.get(name);
    if (!r) {
      lines.push({ name, status: 'missing', maxAbs: NaN, rel: NaN, rtol: tol, detail: 'not in the result' });
      continue;
    }
    if (r.shape.join() !== g.shape.join() || r.data.length !== g.data.length) {
      lines.push({ name, status: 'shape', maxAbs: NaN, rel: NaN, rtol: tol, detail: `shape [${r.shape.join(', ')}], golden [${g.shape.join(', ')}]` });
      continue;
    }
    lines.push(judge(name, asNumbers(r), asNumbers(g), g.shape, tol, g.dtype === 'I64' || g.dtype === 'I32'));
  }
  return lines;
}

export function formatCompareLine(l: CompareLine): string {
  const num = (v: number) => (Number.isNaN(v) ? '-' : v.toExponential(2));
  const status = l.status === 'pass' ? 'PASS' : 'FAIL';
  return `${status}  ${l.name.padEnd(48)} max_abs ${num(l.maxAbs).padStart(9)}  rel ${num(l.rel).padStart(9)}  (rtol ${l.rtol === 0 ? 'exact' : l.rtol.toExponential(0)})${l.detail ? `  ${l.detail}` : ''}`;
}
