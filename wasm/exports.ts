/**
 * The kernels module's exports (wasm/assembly/*.ts), declared once: each export's parameters
 * (byte addresses and f32 counts), and whether worker threads may run it. The main thread's
 * typed table (`KernelExports`), the check that a module has them all (wasm/backend.ts), and
 * the workers' table (`WORKER_FUNCTIONS`, wasm/pool.ts) are all derived from this list.
 */
export const KERNEL_EXPORTS = {
  heapBase: { worker: false, params: [] },
  packedASize: { worker: false, params: ['M', 'K'] },
  packedBSize: { worker: false, params: ['N', 'K'] },
  packARows: { worker: true, params: ['ap', 'a', 'lda', 'M', 'K'] },
  packACols: { worker: true, params: ['ap', 'a', 'lda', 'M', 'K'] },
  packBNK: { worker: false, params: ['bp', 'b', 'ldb', 'N', 'K'] },
  packBKN: { worker: true, params: ['bp', 'b', 'ldb', 'N', 'K'] },
  gemmPacked: { worker: false, params: ['c', 'ldc', 'ap', 'bp', 'M', 'N', 'K', 'tile', 'overwrite'] },
  gemmPackedCols: { worker: true, params: ['c', 'ldc', 'ap', 'bp', 'M', 'N', 'K', 'n0', 'n1', 'tile', 'overwrite'] },
  gemmNaive: { worker: false, params: ['c', 'ldc', 'a', 'lda', 'aTrans', 'b', 'ldb', 'bNK', 'M', 'N', 'K'] },
  fillRows: { worker: false, params: ['c', 'ldc', 'bias', 'M', 'N'] },
  colSumAcc: { worker: false, params: ['db', 'dout', 'M', 'N'] },
  layerNormForward: { worker: true, params: ['out', 'mean', 'rstd', 'x', 'w', 'b', 'M', 'D', 'eps'] },
  layerNormBackward: { worker: true, params: ['dx', 'dw', 'db', 'dout', 'x', 'w', 'mean', 'rstd', 'M', 'D'] },
  modulateForward: { worker: true, params: ['out', 'x', 'shift', 'scale', 'B', 'T', 'D'] },
  modulateBackward: { worker: true, params: ['dx', 'dshift', 'dscale', 'dout', 'x', 'scale', 'B', 'T', 'D'] },
  gatedResidualForward: { worker: true, params: ['x', 'f', 'gate', 'B', 'T', 'D'] },
  gatedResidualBackward: { worker: true, params: ['df', 'dgate', 'dout', 'f', 'gate', 'B', 'T', 'D'] },
  softmaxRows: { worker: false, params: ['s', 'rows', 'n', 'ld', 'scale'] },
  attentionHeadForward: { worker: true, params: ['out', 'ldo', 'p', 'q', 'k', 'v', 'ld', 'T', 'Dh', 'scale', 'ap', 'bp', 'tile'] },
  attentionHeadForwardTiled: { worker: true, params: ['out', 'ldo', 'q', 'k', 'v', 'ld', 'T', 'Dh', 'scale', 'R', 's', 'ap', 'kp', 'vp', 'tile'] },
  attentionHeadBackward: { worker: true, params: ['dq', 'dk', 'dv', 'ldd', 'dout', 'ldo', 'q', 'k', 'v', 'ld', 'p', 'T', 'Dh', 'scale', 'dp', 'ap', 'bp', 'tile'] },
  attentionHeadNaive: { worker: false, params: ['out', 'ldo', 'p', 'q', 'k', 'v', 'ld', 'T', 'Dh', 'scale'] },
  expArray: { worker: false, params: ['out', 'x', 'n'] },
  siluForward: { worker: false, params: ['out', 'x', 'n'] },
  siluBackward: { worker: false, params: ['dx', 'dout', 'x', 'n'] },
  swigluGate: { worker: true, params: ['h', 'g', 'u', 'n'] },
  swigluGateBackward: { worker: true, params: ['dg', 'du', 'dh', 'g', 'u', 'n'] },
  packARowsGather: { worker: false, params: ['ap', 'x', 'ldx', 'slots', 'k', 'n', 'K'] },
  scatterAddRows: { worker: false, params: ['out', 'ldo', 'y', 'slots', 'weight', 'k', 'n', 'D'] },
  gatherRows: { worker: false, params: ['out', 'x', 'ldx', 'slots', 'k', 'n', 'D'] },
  scatterAddRowsBackward: { worker: false, params: ['dy', 'dweight', 'dout', 'ldo', 'y', 'slots', 'weight', 'k', 'n', 'D'] },
  expertForward: { worker: true, params: ['y', 'x', 'slots', 'k', 'n', 'D', 'F', 'bg', 'bu', 'bd', 'g', 'u', 'h', 'ap', 'tile'] },
  swigluRowsForward: { worker: true, params: ['y', 'g', 'u', 'x', 'n', 'D', 'F', 'bg', 'bu', 'bd', 'h', 'ap', 'tile'] },
  conv2dRows: { worker: true, params: ['out', 'x', 'bp', 'bias', 'C', 'H', 'W', 'O', 'kh', 'kw', 'stride', 'pT', 'pL', 'Ho', 'Wo', 'p0', 'p1', 'rows', 'ap', 'cbuf', 'tile'] },
  conv2dBlockRows: { worker: false, params: ['K'] },
  groupNormGroups: { worker: true, params: ['out', 'x', 'w', 'b', 'C', 'S', 'G', 'eps', 'silu', 'g0', 'g1'] },
  swigluRowsBackward: { worker: true, params: ['dx', 'dwg', 'dwu', 'dwd', 'dout', 'x', 'g', 'u', 'n', 'D', 'F', 'bdT', 'bgT', 'buT', 'h', 'dh', 'dg', 'du', 'ap', 'apT', 'bpT', 'tile'] },
} as const satisfies Record<string, { worker: boolean; params: readonly string[] }>;

type Declared = typeof KERNEL_EXPORTS;
export type KernelExportName = keyof Declared;
/** The exports that return a number (sizes, addresses); the others return nothing. */
type Returning = 'heapBase' | 'packedASize' | 'packedBSize' | 'conv2dBlockRows';
/** One number per parameter name (a mapped tuple). */
type Numbers<P extends readonly string[]> = { -readonly [I in keyof P]: number };

/** The module's exports as the host calls them: one number per declared parameter. */
export type KernelExports = {
  [K in KernelExportName]: (...args: Numbers<Declared[K]['params']>) => K extends Returning ? number : void;
};

/** An export that worker threads may run. */
export type WorkerFunction = { [K in KernelExportName]: Declared[K]['worker'] extends true ? K : never }[KernelExportName];

/** The calls a worker may run, by index (the same list on the main thread and in every worker). */
export const WORKER_FUNCTIONS: readonly WorkerFunction[] = (Object.keys(KERNEL_EXPORTS) as KernelExportName[]).filter((k): k is WorkerFunction => KERNEL_EXPORTS[k].worker);
