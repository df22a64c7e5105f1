/**
 * Tensors are plain Float32Arrays with a shape: row-major, `[batch, tokens, hidden]`,
 * weights `[out, in]` as PyTorch stores them. Nothing here owns memory beyond the array.
 */
import { DitMoeError } from './errors.js';

export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensor(shape: readonly number[], data?: Float32Array | ArrayLike<number>): Tensor {
  const n = numel(shape);
  const arr = data === undefined ? new Float32Array(n) : data instanceof Float32Array ? data : Float32Array.from(data);
  if (arr.length !== n) throw new DitMoeError(`data has ${arr.length} elements, shape [${shape.join(', ')}] needs ${n}`);
  return { shape: [...shape], data: arr };
}

export function zeros(shape: readonly number[]): Tensor {
  return tensor(shape);
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** The multi-index of a flat row-major position, as "[i, j, k]" (for messages naming an element). */
export function indexStr(flat: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return `[${idx.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws unless `t` has exactly `shape` (-1 matches any size). */
export function expectShape(t: Tensor, shape: readonly number[], what: string): void {
  const ok = t.shape.length === shape.length && shape.every((d, i) => d === -1 || d === t.shape[i]);
  if (!ok) throw new DitMoeError(`expected shape ${shapeStr(shape.map((d) => (d === -1 ? '*' : d) as number))}, got ${shapeStr(t.shape)}`, what);
}

export function reshape(t: Tensor, shape: readonly number[]): Tensor {
  if (numel(shape) !== t.data.length) throw new DitMoeError(`cannot reshape ${shapeStr(t.shape)} to ${shapeStr(shape)}`);
  return { shape: [...shape], data: t.data };
}

/** Throws unless every element is finite. */
export function expectFinite(t: Tensor | Float32Array | Float64Array, what: string): void {
  const d = 'data' in t ? t.data : t;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) throw new DitMoeError(`element ${i} is ${d[i]}; inputs must be finite`, what);
  }
}
