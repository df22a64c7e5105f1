/**
 * Models larger than memory, at small scale: files read by offset (zip64 .pt, a safetensors file
 * whose offsets pass 2^32), weights kept in their stored dtype, a memory budget below the model
 * (every block streamed from the file, read ahead on a worker), the wasm weight cache evicting,
 * and bad input. Every comparison is bit-for-bit: streaming, evicting and widening late change
 * where the numbers come from, never which numbers they are.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GOLDEN_DIR } from './golden.js';
import { rng } from './random.js';
import { runCli } from './runCli.js';
import { expectOurError } from './errors.js';
import { DitMoeError } from '../core/errors.js';
import { validateConfig, type DiTConfig } from '../ref/config.js';
import { ParamStore, paramSpecs } from '../ref/params.js';
import { DiTModel } from '../ref/model.js';
import { type Kernels } from '../ref/kernels.js';
import { refKernels } from '../ref/refKernels.js';
import { serializeSafetensors, halfBits, bf16Bits, halfToFloat, type DType, type StTensor } from '../io/safetensors.js';
import { memorySource } from '../io/byteSource.js';
import { openSafetensors, readRawTensor } from '../io/tensorFile.js';
import { FileWeights } from '../io/weightStore.js';
import { readPtCheckpoint, indexPtCheckpoint, writePtCheckpoint } from '../io/pt/checkpoint.js';
import { openFileSource } from '../node/fileSource.js';
import { loadModelWithMetadata } from '../cli/loadModel.js';
import { sampleImages } from '../cli/commands/sample.js';
import { createWasmKernels, type WasmKernels } from '../wasm/node.js';

const G = (f: string) => path.join(GOLDEN_DIR, f);
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-moe-big-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 8 blocks of ~250 KB each (float32): a budget of 1.2 MB streams every block, one of 0.3 MB cannot hold two. */
const CONFIG: DiTConfig = validateConfig({ input_size: 8, patch_size: 2, in_channels: 4, hidden_size: 32, depth: 8, num_heads: 2, num_classes: 10, num_experts: 4, num_experts_per_tok: 2, n_shared_experts: 1 });

/** Random weights of every tensor (adaLN included, so every block changes its input), rounded to `dtype`. */
function randomWeights(c: DiTConfig, seed: number, dtype: DType = 'F32'): ParamStore {
  const r = rng(seed);
  const p = new ParamStore(paramSpecs(c));
  const bits = new Uint32Array(p.data.buffer);
  for (let i = 0; i < p.data.length; i++) {
    p.data[i] = (r() - 0.5) * 0.4;
    if (dtype === 'F16') p.data[i] = halfToFloat(halfBits(bits[i]));
    if (dtype === 'BF16') bits[i] = bf16Bits(bits[i]) << 16;
  }
  return p;
}

function stateDict(p: ParamStore, dtype: DType): Map<string, StTensor> {
  return new Map(p.specs.map((s) => [s.name, { dtype, shape: s.shape, data: p.get(s.name) }]));
}

function writeModel(name: string, p: ParamStore, dtype: DType, c = CONFIG): string {
  const file = path.join(dir, name);
  const sd = stateDict(p, dtype);
  fs.writeFileSync(file, name.endsWith('.pt') ? writePtCheckpoint(sd) : serializeSafetensors(sd, { config: JSON.stringify(c) }));
  return file;
}

function inputs(c: DiTConfig, N = 2) {
  const r = rng(7);
  const shape = [N, c.in_channels, c.input_size, c.input_size];
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => r() * 2 - 1);
  return { x, shape, t: Float32Array.from({ length: N }, (_, i) => 100 + 300 * i), y: Int32Array.from({ length: N }, (_, i) => i % c.num_classes) };
}

/** Bit-for-bit equality of two arrays (faster than toEqual on large typed arrays; NaN patterns compared too). */
function expectSameBits(got: ArrayBufferView, want: ArrayBufferView, what: string): void {
  const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  expect(got.byteLength, what).toBe(want.byteLength);
  expect(bytes(got).equals(bytes(want)), what).toBe(true);
}

function forward(m: DiTModel): Float32Array {
  const { x, shape, t, y } = inputs(m.config);
  return m.forward(x, shape, t, y);
}

function sampleLoop(m: DiTModel): Float32Array {
  return sampleImages(m, { sampler: 'flow', steps: 3, labels: Int32Array.from([1, 2]), cfg: 2, guidedChannels: 'all', seed: 3 });
}

describe('files read by offset', () => {
  it('the zip64 .pt gives bit-identical tensors to the plain .pt, in memory and read from the file by offset', () => {
    const plain = readPtCheckpoint(new Uint8Array(fs.readFileSync(G('tiny.model.pt'))), 'tiny.model.pt').stateDict;
    const zip64 = readPtCheckpoint(new Uint8Array(fs.readFileSync(G('tiny.model_zip64.pt'))), 'tiny.model_zip64.pt').stateDict;
    const src = openFileSource(G('tiny.model_zip64.pt'));
    try {
      const { file } = indexPtCheckpoint(src, 'tiny.model_zip64.pt');
      expect([...zip64.keys()]).toEqual([...plain.keys()]);
      expect(file.tensors.size).toBe(plain.size);
      for (const [name, t] of plain) {
        expectSameBits(zip64.get(name)!.data, t.data, name);
        expectSameBits(readRawTensor(file, file.tensors.get(name)!).data, t.data, name);
      }
    } finally {
      src.close();
    }
  });

  it('a safetensors file whose offsets pass 2^32 (sparse: a 4 GiB tensor never written, the data at the end) reads its last tensor by offset', () => {
    const file = path.join(dir, 'sparse.safetensors');
    const big = 2 ** 30 + 16; // float32 elements: 2^32 + 64 bytes
    const w = Float32Array.from([1.5, -2, 3.25, 2 ** -20]);
    const header = { big: { dtype: 'F32', shape: [big], data_offsets: [0, 4 * big] }, w: { dtype: 'F32', shape: [4], data_offsets: [4 * big, 4 * big + 16] } };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const fd = fs.openSync(file, 'w');
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, json, 0, json.length, 8);
    const end = 8 + json.length + 4 * big;
    fs.writeSync(fd, new Uint8Array(w.buffer), 0, 16, end);
    fs.closeSync(fd);
    expect(fs.statSync(file).size).toBe(end + 16);
    const src = openFileSource(file);
    try {
      const st = openSafetensors(src, file);
      const ref = st.tensors.get('w')!;
      expect(ref.offset).toBeGreaterThan(2 ** 32);
      expect(readRawTensor(st, ref).data).toEqual(w);
      expect(src.bytesRead).toBeLessThan(1000); // the header and 16 bytes, not the file
    } finally {
      src.close();
    }
    fs.truncateSync(file, end + 12); // the last tensor cut: found from the header, nothing read
    const cut = openFileSource(file);
    try {
      expectOurError(() => openSafetensors(cut, file), "tensor 'w'", 'run past the end of the data', 'truncated');
      expect(cut.bytesRead).toBeLessThan(1000);
    } finally {
      cut.close();
    }
  });
});

describe('weights kept in their stored dtype', () => {
  for (const dtype of ['F16', 'BF16'] as const) {
    it(`a ${dtype} file: held as 16 bits (half the float32 bytes), forward equal to the same weights widened in advance, on ref and wasm`, async () => {
      const p = randomWeights(CONFIG, 11, dtype); // exactly representable in dtype
      const bytes = serializeSafetensors(stateDict(p, dtype), { config: JSON.stringify(CONFIG) });
      const store = new FileWeights(openSafetensors(memorySource(bytes), dtype), CONFIG);
      const store32 = new FileWeights(openSafetensors(memorySource(serializeSafetensors(stateDict(p, 'F32'))), 'f32'), CONFIG);
      expect(store.heldBytes * 2).toBe(store32.heldBytes);
      const wasm = await createWasmKernels();
      try {
        for (const k of [refKernels, wasm] as Kernels[]) {
          const want = forward(new DiTModel(CONFIG, p, k));
          expectSameBits(forward(new DiTModel(CONFIG, store, k)), want, k.name);
        }
      } finally {
        wasm.dispose();
      }
    });
  }
});

describe('a memory budget below the model: every block streamed from the file, bit-identical to resident', () => {
  const p = randomWeights(CONFIG, 5);
  const backends: [string, () => Promise<Kernels>][] = [
    ['ref', async () => refKernels],
    ['wasm, 1 thread', () => createWasmKernels({ threads: 1 })],
    ['wasm, 2 threads', () => createWasmKernels({ threads: 2, minParallelFlops: 0 })],
  ];
  for (const [name, make] of backends) {
    it(`${name}: a forward and a 3-step sampling loop, safetensors float32 and .pt float16`, async () => {
      for (const [file, dtype] of [[writeModel('stream.safetensors', p, 'F32'), 'F32'], [writeModel('stream16.pt', randomWeights(CONFIG, 6, 'F16'), 'F16')]] as const) {
        const k1 = await make();
        const k2 = await make();
        const lines: string[] = [];
        try {
          const opts = { config: JSON.stringify(CONFIG), note: (l: string) => lines.push(l), progress: null };
          const resident = (await loadModelWithMetadata(file, k1, opts)).model;
          const streamed = (await loadModelWithMetadata(file, k2, { ...opts, memoryBudget: 0.0012 })).model;
          expect((resident.weights as FileWeights).resident).toBe(true);
          expect((streamed.weights as FileWeights).resident, `${file}: ${lines.join(' / ')}`).toBe(false);
          expect(lines.some((l) => /streamed block by block/.test(l))).toBe(true);
          expectSameBits(forward(streamed), forward(resident), `${name} ${dtype} forward`);
          expectSameBits(sampleLoop(streamed), sampleLoop(resident), `${name} ${dtype} sampling`);
          expect(() => streamed.params).toThrow(/streamed block by block/); // training needs them resident
          (streamed.weights as FileWeights).close();
        } finally {
          (k1 as Partial<WasmKernels>).dispose?.();
          (k2 as Partial<WasmKernels>).dispose?.();
        }
      }
    });
  }
});

describe('the wasm weight cache within its budget', () => {
  it('evicts and re-packs between forwards with outputs identical to an unbounded cache; a layer larger than the budget is one clear error', async () => {
    const p = randomWeights(CONFIG, 9);
    const unbounded = await createWasmKernels();
    // the largest call packs a layer's 4 experts: 3 · 4 · 128 · 32 floats = 196 KB; 300 KB holds one layer, not the model's 2 MB
    const bounded = await createWasmKernels({ weightBudget: 300_000 });
    const tiny = await createWasmKernels({ weightBudget: 100_000 });
    try {
      const want = forward(new DiTModel(CONFIG, p, unbounded));
      const m = new DiTModel(CONFIG, p, bounded);
      expectSameBits(forward(m), want, 'first forward');
      const evicted = bounded.weightCache.evictions;
      expect(evicted).toBeGreaterThan(0);
      expect(bounded.weightCache.bytes).toBeLessThanOrEqual(300_000);
      expectSameBits(forward(m), want, 'second forward');
      expect(bounded.weightCache.evictions).toBeGreaterThan(evicted);
      const err = await Promise.resolve().then(() => forward(new DiTModel(CONFIG, p, tiny))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DitMoeError);
      expect((err as Error).message).toMatch(/^wasm memory: a layer's packed weights need [\d.]+ MiB at once .* more than the weight cache's budget of 0\.1 MiB$/);
      expect(tiny.arena.bytesInUse).toBeLessThan(200_000); // nothing left behind but the threads' tiles
    } finally {
      for (const k of [unbounded, bounded, tiny]) k.dispose();
    }
  });
});

describe('bad input: one line naming the file and the problem, exit 2, nothing written', () => {
  const out = () => path.join(dir, 'never.png');
  function expectBad(args: string[], ...fragments: (string | RegExp)[]) {
    const r = runCli(...args);
    expect(r.code, r.err).toBe(2);
    const lines = r.err.trim().split('\n');
    expect(lines, r.err).toHaveLength(1);
    for (const f of fragments) expect(lines[0]).toMatch(f);
    expect(fs.existsSync(out())).toBe(false);
  }
  const sample = (model: string, ...more: string[]) => ['sample', '--model', model, '--count', '2', '--steps', '1', '--sampler', 'flow', '--backend', 'ref', '--out', out(), ...more];

  it('a budget smaller than one block, a truncated file, offsets past the file, a lying zip64 record, an unsupported dtype', () => {
    const st = writeModel('bad.safetensors', randomWeights(CONFIG, 1), 'F32');
    expectBad(sample(st, '--memory-budget', '0.0003'), st, /memory budget 0\.3 MB \(--memory-budget 0\.0003\) is smaller than streaming one block needs/);

    const bytes = fs.readFileSync(st);
    const cut = path.join(dir, 'cut.safetensors');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    expectBad(sample(cut), cut, /run past the end of the data .*truncated/);

    const ptBytes = fs.readFileSync(G('tiny.model_zip64.pt'));
    const cutPt = path.join(dir, 'cut.pt');
    fs.writeFileSync(cutPt, ptBytes.subarray(0, ptBytes.length - 30));
    expectBad(sample(cutPt), cutPt, /end-of-central-directory|truncated/);

    // the zip64 end-of-central-directory record moved to a wrong central directory offset
    const lying = Buffer.from(ptBytes);
    const locator = lying.length - 22 - 20;
    const z64 = Number(lying.readBigUInt64LE(locator + 8));
    lying.writeBigUInt64LE(BigInt(lying.length * 2), z64 + 48);
    const lie = path.join(dir, 'lying.pt');
    fs.writeFileSync(lie, lying);
    expectBad(sample(lie), lie, /central directory/);

    const u8 = path.join(dir, 'u8.safetensors');
    const json = JSON.stringify({ w: { dtype: 'U8', shape: [8], data_offsets: [0, 8] } });
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(json.length));
    fs.writeFileSync(u8, Buffer.concat([head, Buffer.from(json), Buffer.alloc(8)]));
    expectBad(sample(u8, '--preset', 'S/2'), u8, "tensor 'w'", /unsupported dtype "U8"/);
  });
});

