/**
 * Reading ahead (Node): a worker thread reads the next block's tensors from the file into a
 * shared buffer while the current block computes on this thread; `read` then only waits for
 * what is not in yet (Atomics.wait on a flag the worker sets). The worker also checks the
 * block's CRC-32s (the first time) and widens its float16/bfloat16 tensors to float32, so this
 * thread only packs and computes. Buffers of released blocks are reused, so streaming a model
 * holds about two blocks' bytes and their widened copies. A failed read in the worker is retried
 * on this thread, which reports it as any read does; a CRC-32 mismatch is found again and reported.
 */
import { Worker } from 'node:worker_threads';
import type { BlockBytes, ReadPlan, RangeReader } from '../io/weightStore.js';
import type { FileSource } from './fileSource.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const fd = fs.openSync(workerData.file, 'r');
let crcTable, halfTable;
function crc32(u8, at, n) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) { let c = i; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; crcTable[i] = c >>> 0; }
  }
  let c = 0xffffffff;
  for (let i = at, end = at + n; i < end; i++) c = crcTable[(c ^ u8[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
function half(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
parentPort.on('message', ({ buf, reads, flag, checks, widen, wide }) => {
  const u8 = new Uint8Array(buf);
  const f = new Int32Array(flag);
  let state = 1;
  try {
    for (const r of reads) {
      let done = 0;
      while (done < r.bytes) {
        const n = fs.readSync(fd, u8, r.at + done, Math.min(1 << 30, r.bytes - done), r.offset + done);
        if (n === 0) throw new Error('short read');
        done += n;
      }
    }
    for (const c of checks) if (crc32(u8, c.at, c.bytes) !== c.crc) state = 3;
    if (state === 1 && wide) {
      for (const w of widen) {
        const h = new Uint16Array(buf, w.at, w.n);
        if (w.dtype === 'BF16') {
          const out = new Uint32Array(wide, w.to, w.n);
          for (let i = 0; i < w.n; i++) out[i] = h[i] << 16;
        } else {
          if (!halfTable) { halfTable = new Float32Array(65536); for (let i = 0; i < 65536; i++) halfTable[i] = half(i); }
          const out = new Float32Array(wide, w.to, w.n);
          for (let i = 0; i < w.n; i++) out[i] = halfTable[h[i]];
        }
      }
    }
  } catch (e) {
    state = 2;
  }
  Atomics.store(f, 0, state);
  Atomics.notify(f, 0);
});
`;

interface Pending {
  buf: SharedArrayBuffer;
  wide: SharedArrayBuffer | null;
  flag: Int32Array;
}

/** A reader that reads ahead on a worker thread; `src` is the file's source, for the reads not started ahead. */
export function readAheadReader(src: FileSource): RangeReader & { close(): void } {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: src.file } });
  worker.unref();
  const pending = new Map<ReadPlan, Pending>();
  const inUse = new Map<ReadPlan, SharedArrayBuffer[]>();
  const free: SharedArrayBuffer[] = [];
  const take = (size: number): SharedArrayBuffer => {
    const i = free.findIndex((b) => b.byteLength >= size);
    return i >= 0 ? free.splice(i, 1)[0] : new SharedArrayBuffer(Math.max(8, size));
  };
  const reader = {
    waitMs: 0,
    readAhead(plan: ReadPlan): void {
      if (pending.has(plan) || inUse.has(plan)) return;
      const p = { buf: take(plan.size), wide: plan.wideSize ? take(plan.wideSize) : null, flag: new Int32Array(new SharedArrayBuffer(4)) };
      pending.set(plan, p);
      worker.postMessage({ buf: p.buf, reads: plan.reads, flag: p.flag.buffer, checks: plan.checks, widen: plan.widen, wide: p.wide });
    },
    read(plan: ReadPlan): BlockBytes {
      const t0 = performance.now();
      const p = pending.get(plan);
      pending.delete(plan);
      let state = 0;
      if (p) {
        while (Atomics.load(p.flag, 0) === 0) Atomics.wait(p.flag, 0, 0);
        state = Atomics.load(p.flag, 0); // 1 read, checked and widened; 2 a read failed; 3 a CRC-32 did not match
      }
      const buf = p?.buf ?? take(plan.size);
      const bytes = new Uint8Array(buf, 0, plan.size);
      // a failed read is read again here, where its error is reported as any read's
      if (state !== 1 && state !== 3) for (const x of plan.reads) src.read(x.offset, x.bytes, bytes.subarray(x.at, x.at + x.bytes));
      inUse.set(plan, p?.wide ? [buf, p.wide] : [buf]);
      reader.waitMs += performance.now() - t0;
      return state === 1 ? { bytes, wide: p!.wide && new Float32Array(p!.wide, 0, plan.wideSize / 4), checked: true } : { bytes, wide: null, checked: false };
    },
    release(plan: ReadPlan): void {
      const bufs = inUse.get(plan);
      if (!bufs) return;
      inUse.delete(plan);
      for (const b of bufs) if (free.length < 4) free.push(b);
    },
    close(): void {
      void worker.terminate();
    },
  };
  return reader;
}
