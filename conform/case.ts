/**
 * Conformance cases (the ONNX backend-test idea): a case file in the golden format —
 * `__metadata__.kind`, `__metadata__.recipe`, `in.*` tensors — goes in, the `out.*` (and
 * `grad.*`, ...) tensors we compute come out under the same names. Each kind has a runner;
 * another backend is checked by running the same cases and comparing (compare.ts).
 */
import { DitMoeError } from '../core/errors.js';
import type { SafeTensors, StTensor } from '../io/safetensors.js';
import type { Kernels } from '../ref/kernels.js';
import type { DiTModel } from '../ref/model.js';

export interface CaseContext {
  kernels: Kernels;
  /** Loads the model named by --model (runners that need none never call it). */
  model: () => DiTModel;
  where: string; // the case file, for error messages
  /** The tensors of --model (or --encoder) as read, for kinds whose model is not a DiT-MoE (vae, taesd). */
  files?: (which: 'model' | 'encoder') => { tensors: Map<string, StTensor>; metadata: Record<string, string>; where: string };
}

export type CaseRunner = (c: SafeTensors, ctx: CaseContext) => Map<string, StTensor>;

const runners = new Map<string, CaseRunner>();

export function registerCaseKind(kind: string, runner: CaseRunner): void {
  runners.set(kind, runner);
}

export function supportedKinds(): string[] {
  return [...runners.keys()];
}

export function runCase(c: SafeTensors, ctx: CaseContext): Map<string, StTensor> {
  const kind = c.metadata.kind;
  if (kind === undefined) throw new DitMoeError('has no __metadata__.kind; not a conformance case', ctx.where);
  const run = runners.get(kind);
  if (!run) throw new DitMoeError(`case kind '${kind}' is not supported (supported: ${supportedKinds().join(', ')})`, ctx.where);
  return run(c, ctx);
}

/** The named input tensor, or an error naming the case file and tensor. */
export function input(c: SafeTensors, name: string, where: string): StTensor {
  const t = c.tensors.get(name);
  if (!t) throw new DitMoeError(`missing input tensor '${name}'`, where);
  return t;
}

/** Parses a JSON metadata field, or an error naming it. */
export function metaJson<T>(c: SafeTensors, field: string, where: string): T {
  const raw = c.metadata[field];
  if (raw === undefined) throw new DitMoeError(`missing __metadata__.${field}`, where);
  try {
    return JSON.parse(raw) as T;
  } catch (e) {
    throw new DitMoeError(`__metadata__.${field} is not valid JSON (${(e as Error).message})`, where);
  }
}
