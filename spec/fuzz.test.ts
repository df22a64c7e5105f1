/**
 * Fuzzing the file readers (the attack surface): seeded fast-check mutations of the golden
 * `tiny.model.pt` and `tiny.model.safetensors` (bit flips, overwritten bytes, truncation,
 * spliced, inserted and deleted runs, length and offset fields overwritten with boundary
 * values), aimed at the parts that steer the parsers (zip headers and directory, the pickle,
 * the safetensors header) as well as anywhere. Every outcome must be a valid load or a
 * DitMoeError: never another exception, a hang (each case must finish within 2 s, ~3 ms typical; the
 * whole file runs in well under a minute on one core) or an allocation the file does not
 * justify (the tensors returned may take at most 4× the file, the reader's own budget).
 *
 * The .pt cases mostly skip the CRC check, or nearly every mutation of the pickle would stop
 * at "CRC-32 mismatch" and the unpickler would never see it; a share keeps it on.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitMoeError } from '../core/errors.js';
import { parseSafetensors, type StTensor } from '../io/safetensors.js';
import { readPtCheckpoint } from '../io/pt/checkpoint.js';
import { readZip, writeZip } from '../io/pt/zip.js';
import { unpickle } from '../io/pt/unpickle.js';
import { GOLDEN_DIR } from './golden.js';

const PT = new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.pt')));
const ST = new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.safetensors')));
const SEED = 20240611;
const MAX_CASE_MS = 2000; // cases take ~3 ms; the margin is for a loaded two-core machine

type Region = [number, number];
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; from: number; at: number; len: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'field'; at: number; width: 2 | 4 | 8; value: number };

/** Boundary values for length/offset/count fields; `len` is the file's own length. */
const fieldValue = (choice: number, len: number): bigint => {
  const vals = [0n, 1n, 0xffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn, BigInt(len), BigInt(len - 1), BigInt(len + 1), 1n << 32n, 1n << 53n, (1n << 64n) - 1n, 1n << 62n];
  return vals[choice % vals.length];
};

/** A mutation whose position lies in one of `regions` (picked by the generator). */
const mutationIn = (regions: Region[]) => {
  const pos = fc.tuple(fc.nat(regions.length - 1), fc.nat()).map(([r, k]) => regions[r][0] + (k % Math.max(1, regions[r][1] - regions[r][0])));
  return fc.oneof(
    // Same-length mutations are weighted up: a length change shifts every offset after it,
    // which the directory checks catch at once, so they explore less of the parsers.
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: pos, bit: fc.nat(7) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: pos, value: fc.nat(255) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: pos }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('splice' as const), from: pos, at: pos, len: fc.integer({ min: 1, max: 64 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: pos, bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 16 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: pos, len: fc.integer({ min: 1, max: 64 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('field' as const), at: pos, width: fc.constantFrom(2 as const, 4 as const, 8 as const), value: fc.nat(100) }) },
  );
};

function apply(src: Uint8Array, muts: Mutation[]): Uint8Array {
  let b = src.slice();
  for (const m of muts) {
    const at = Math.min(m.at, b.length);
    switch (m.kind) {
      case 'flip':
        if (at < b.length) b[at] ^= 1 << m.bit;
        break;
      case 'byte':
        if (at < b.length) b[at] = m.value;
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'splice': {
        const from = Math.min(m.from, b.length);
        b.set(b.slice(from, from + Math.min(m.len, b.length - at)), at);
        break;
      }
      case 'insert': {
        const c = new Uint8Array(b.length + m.bytes.length);
        c.set(b.subarray(0, at));
        c.set(m.bytes, at);
        c.set(b.subarray(at), at + m.bytes.length);
        b = c;
        break;
      }
      case 'delete': {
        const c = new Uint8Array(Math.max(at, b.length - m.len));
        c.set(b.subarray(0, at));
        c.set(b.subarray(Math.min(b.length, at + m.len)), at);
        b = c;
        break;
      }
      case 'field': {
        if (at + m.width > b.length) break;
        const v = fieldValue(m.value, b.length);
        const dv = new DataView(b.buffer);
        if (m.width === 2) dv.setUint16(at, Number(v & 0xffffn), true);
        else if (m.width === 4) dv.setUint32(at, Number(v & 0xffffffffn), true);
        else dv.setBigUint64(at, v, true);
        break;
      }
    }
  }
  return b;
}

const tensorBytes = (ts: Iterable<StTensor>) => {
  let n = 0;
  for (const t of ts) n += t.data.byteLength;
  return n;
};

/** Runs one case: 'ok' or the DitMoeError's message; rethrows anything else. */
function outcome(bytes: Uint8Array, load: (b: Uint8Array) => Iterable<StTensor> | void): string {
  const t0 = performance.now();
  let result: string;
  try {
    const ts = load(bytes);
    if (ts) expect(tensorBytes(ts), 'returned tensors larger than the file justifies').toBeLessThanOrEqual(4 * bytes.length + (1 << 20));
    result = 'ok';
  } catch (e) {
    if (!(e instanceof DitMoeError)) throw e;
    expect(e.message.includes('\n'), 'one-line message').toBe(false);
    result = e.message;
  }
  const ms = performance.now() - t0;
  expect(ms, 'a case took too long').toBeLessThan(MAX_CASE_MS);
  return result;
}

/** Counts outcomes by message shape (numbers stripped), to show what the fuzzer reached. */
function tally(counts: Map<string, number>, r: string) {
  const k = r === 'ok' ? 'ok' : r.replace(/^[^:]*: /, '').replace(/'[^']*'/g, "'…'").replace(/\d+/g, 'N').slice(0, 70);
  counts.set(k, (counts.get(k) ?? 0) + 1);
}
function report(name: string, counts: Map<string, number>) {
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  console.log(`${name}: ${rows.reduce((s, r) => s + r[1], 0)} cases, ${rows.length} distinct outcomes\n` + rows.slice(0, 12).map(([k, n]) => `  ${String(n).padStart(5)}  ${k}`).join('\n'));
}

describe('regressions the fuzzing suggested', () => {
  const st = (header: object, data = new Uint8Array(0)) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const b = new Uint8Array(8 + json.length + data.length);
    new DataView(b.buffer).setBigUint64(0, BigInt(json.length), true);
    b.set(json, 8);
    b.set(data, 8 + json.length);
    return b;
  };
  it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty'])('safetensors dtype %s (an Object.prototype name) is an unsupported dtype', (dtype) => {
    expect(() => parseSafetensors(st({ w: { dtype, shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), 'x.safetensors')).toThrow(/unsupported dtype/);
  });
});

describe('fuzzing the readers (seeded)', () => {
  const zip = readZip(PT, 'golden');
  const pkl = zip.byName.get('tiny.model/data.pkl')!;
  const cdStart = Math.min(...zip.entries.map((e) => e.dataOffset + e.size));
  const ptRegions: Region[] = [
    [0, PT.length], // anywhere
    [pkl.dataOffset, pkl.dataOffset + pkl.size], // the pickle
    [cdStart, PT.length], // data descriptor, central directory, zip64 records, EOCD
    ...zip.entries.slice(0, 8).map((e) => [e.headerOffset, e.dataOffset] as Region), // local headers
  ];

  it('tiny.model.pt: 2000 mutated files load or fail with our error', () => {
    const counts = new Map<string, number>();
    fc.assert(
      fc.property(fc.array(mutationIn(ptRegions), { minLength: 1, maxLength: 3 }), fc.nat(3), (muts, crcChoice) => {
        const bytes = apply(PT, muts);
        tally(counts, outcome(bytes, (b) => readPtCheckpoint(b, 'fuzz.pt', { checkCrc: crcChoice === 0 }).stateDict.values()));
      }),
      { seed: SEED, numRuns: 2000 },
    );
    report('tiny.model.pt', counts);
    expect(counts.get('ok') ?? 0).toBeGreaterThan(50);
    expect(counts.size).toBeGreaterThan(15); // many different errors were reached
  });

  it('data.pkl: 2000 mutated pickles, alone and inside the checkpoint, load or fail with our error', () => {
    const original = zip.read(pkl);
    const storages = zip.entries.filter((e) => e.name !== pkl.name).map((e) => ({ name: e.name, data: zip.read(e) }));
    const counts = new Map<string, number>();
    let i = 0;
    fc.assert(
      fc.property(fc.array(mutationIn([[0, original.length], [0, 400], [original.length - 4500, original.length]]), { minLength: 1, maxLength: 4 }), (muts) => {
        const p = apply(original, muts);
        const alone = outcome(p, (b) => void unpickle(b, { where: 'fuzz.pkl' }));
        // Every tenth case also goes through the whole reader (storages resolved, tensors built).
        if (i++ % 10 === 0 || alone === 'ok') {
          const file = writeZip([{ name: 'tiny.model/data.pkl', data: p }, ...storages]);
          tally(counts, outcome(file, (b) => readPtCheckpoint(b, 'fuzz.pt').stateDict.values()));
        } else tally(counts, alone);
      }),
      { seed: SEED + 1, numRuns: 2000 },
    );
    report('data.pkl', counts);
    expect(counts.get('ok') ?? 0).toBeGreaterThan(20);
    expect(counts.size).toBeGreaterThan(15);
  });

  it('tiny.model.safetensors: 2000 mutated files load or fail with our error', () => {
    const headerEnd = 8 + Number(new DataView(ST.buffer, ST.byteOffset).getBigUint64(0, true));
    const counts = new Map<string, number>();
    fc.assert(
      fc.property(fc.array(mutationIn([[0, ST.length], [0, 8], [8, headerEnd], [8, headerEnd]]), { minLength: 1, maxLength: 3 }), (muts) => {
        const bytes = apply(ST, muts);
        tally(counts, outcome(bytes, (b) => parseSafetensors(b, 'fuzz.safetensors').tensors.values()));
      }),
      { seed: SEED + 2, numRuns: 2000 },
    );
    report('tiny.model.safetensors', counts);
    expect(counts.get('ok') ?? 0).toBeGreaterThan(50);
    expect(counts.size).toBeGreaterThan(10);
  });
});
