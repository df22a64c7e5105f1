/**
 * The parallel split of the wasm backend: how one kernel call is cut into independent calls
 * that the threads claim (wasm/pool.ts): products by blocks of 16-column panels, row-wise and
 * elementwise kernels by ranges, independent experts side by side, largest first.
 */
import type { BackendHooks } from './hooks.js';
import type { Call, WorkerFunction } from './threads.js';

/** Indices of `work` from the largest to the smallest: threads claim the big calls first, so the last to finish is a small one. */
export function largestFirst(work: number[]): number[] {
  return work.map((_, i) => i).sort((i, j) => work[j] - work[i]);
}

/**
 * C[M,N] (row stride ldc) = A·B (overwrite: C's old contents are never read) or += A·B, from
 * packed operands, in blocks of columns shared by the threads.
 */
export function gemm(be: BackendHooks, c: number, ldc: number, ap: number, bp: number, M: number, N: number, K: number, overwrite: boolean): void {
  const panels = Math.ceil(N / 16);
  const parts = be.parts(2 * M * N * K);
  const ow = overwrite ? 1 : 0;
  if (parts === 1 || panels === 1) {
    be.exports.gemmPacked(c, ldc, ap, bp, M, N, K, be.tiles[0], ow);
    return;
  }
  // about 6 blocks per thread: small enough to balance, large enough to amortise a claim
  const per = Math.max(1, Math.ceil(panels / (6 * parts)));
  const calls: Call[] = [];
  for (let p = 0; p < panels; p += per) calls.push(['gemmPackedCols', [c, ldc, ap, bp, M, N, K, p * 16, Math.min(N, (p + per) * 16), -1, ow]]);
  be.runCalls(
    calls,
    be.tiles.map((t) => [t]),
  );
}

/**
 * A row-wise or elementwise kernel over [0, n) cut into one range per thread (range starts
 * aligned to `align`: row pairs of packed A, 16-column panels of packed B) when `work` is
 * worth waking a worker; args(lo, hi) gives the call's arguments for one range.
 */
export function split(be: BackendHooks, fn: WorkerFunction, n: number, align: number, work: number, args: (lo: number, hi: number) => number[]): void {
  const parts = be.parts(work);
  const per = Math.ceil(n / parts / align) * align;
  if (parts === 1 || per >= n) {
    (be.exports[fn] as (...a: number[]) => void)(...args(0, n));
    return;
  }
  const calls: Call[] = [];
  for (let lo = 0; lo < n; lo += per) calls.push([fn, args(lo, Math.min(n, lo + per))]);
  be.runCalls(
    calls,
    Array.from({ length: parts }, () => []),
  );
}

/** packARows by row pairs, shared by the threads. */
export function packRows(be: BackendHooks, ap: number, a: number, lda: number, M: number, K: number): void {
  split(be, 'packARows', M, 2, 2 * M * K, (lo, hi) => [ap + lo * K * 4, a + lo * lda * 4, lda, hi - lo, K]);
}

/** packACols (A given transposed) by row pairs of A, shared by the threads. */
export function packCols(be: BackendHooks, ap: number, a: number, lda: number, M: number, K: number): void {
  split(be, 'packACols', M, 2, 2 * M * K, (lo, hi) => [ap + lo * K * 4, a + lo * 4, lda, hi - lo, K]);
}

/** packBKN by 16-column panels, shared by the threads. */
export function packKN(be: BackendHooks, bp: number, b: number, ldb: number, N: number, K: number): void {
  split(be, 'packBKN', N, 16, 2 * N * K, (lo, hi) => [bp + lo * K * 4, b + lo * 4, ldb, hi - lo, K]);
}

/**
 * Whether independent experts (work ∝ rows·width each) can run whole, one per thread: more
 * than one, on more than one thread, none with more than a thread's share, and no call writing
 * memory that another call uses (each call's operands: [array, written]).
 */
export function sideBySide(be: BackendHooks, work: number[], operands: [Float32Array | null, boolean][][], flops: number): boolean {
  const parts = be.parts(flops);
  const total = work.reduce((p, q) => p + q, 0);
  if (parts === 1 || work.length < 2 || Math.max(...work) * parts > total) return false;
  // views of this memory compare by address whatever buffer object they were cut from (it changes as the memory grows)
  const where = (a: Float32Array) => (be.resident(a) ? be.arena.memory : a.buffer);
  const ranges = operands.flatMap((ops, call) => ops.filter(([a]) => a !== null).map(([a, write]) => ({ call, write, buffer: where(a!), lo: a!.byteOffset, hi: a!.byteOffset + a!.byteLength })));
  for (const p of ranges)
    for (const q of ranges) if (p.call < q.call && (p.write || q.write) && p.buffer === q.buffer && p.lo < q.hi && q.lo < p.hi) return false;
  return true;
}
