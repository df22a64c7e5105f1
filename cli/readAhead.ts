/**
 * Reading ahead (Node): a worker thread reads the next block's tensors from the file into a
 * shared buffer while the current block computes on this thread; `read` then only waits for
 * what is not in yet (Atomics.wait on a flag the worker sets). Buffers of released blocks are
 * reused, so streaming a model holds about two blocks' bytes. A failed read in the worker is
 * retried on this thread, which reports it as any read does.
 */
import { Worker } from 'node:worker_threads';
import type { ReadPlan, RangeReader } from '../io/weightStore.js';
import type { FileSource } from './fileSource.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const fd = fs.openSync(workerData.file, 'r');
parentPort.on('message', ({ buf, reads, flag }) => {
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
  } catch (e) {
    state = 2;
  }
  Atomics.store(f, 0, state);
  Atomics.notify(f, 0);
});
`;

interface Pending {
  buf: SharedArrayBuffer;
  flag: Int32Array;
}

/** A reader that reads ahead on a worker thread; `src` is the file's source, for the reads not started ahead. */
export function readAheadReader(src: FileSource): RangeReader & { close(): void } {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: src.file } });
  worker.unref();
  const pending = new Map<ReadPlan, Pending>();
  const inUse = new Map<ReadPlan, SharedArrayBuffer>();
  const free: SharedArrayBuffer[] = [];
  const take = (size: number): SharedArrayBuffer => {
    const i = free.findIndex((b) => b.byteLength >= size);
    return i >= 0 ? free.splice(i, 1)[0] : new SharedArrayBuffer(Math.max(8, size));
  };
  const reader = {
    waitMs: 0,
    readAhead(plan: ReadPlan): void {
      if (pending.has(plan) || inUse.has(plan)) return;
      const p = { buf: take(plan.size), flag: new Int32Array(new SharedArrayBuffer(4)) };
      pending.set(plan, p);
      worker.postMessage({ buf: p.buf, reads: plan.reads, flag: p.flag.buffer });
    },
    read(plan: ReadPlan): Uint8Array {
      const t0 = performance.now();
      let p = pending.get(plan);
      pending.delete(plan);
      let buf: SharedArrayBuffer;
      if (p) {
        while (Atomics.load(p.flag, 0) === 0) Atomics.wait(p.flag, 0, 0);
        buf = p.buf;
        if (Atomics.load(p.flag, 0) === 2) p = undefined; // read it here: the error is reported as any read's
      } else buf = inUse.get(plan) ?? take(plan.size);
      const out = new Uint8Array(buf, 0, plan.size);
      if (!p) for (const x of plan.reads) src.read(x.offset, x.bytes, out.subarray(x.at, x.at + x.bytes));
      inUse.set(plan, buf);
      reader.waitMs += performance.now() - t0;
      return out;
    },
    release(plan: ReadPlan): void {
      const buf = inUse.get(plan);
      if (!buf) return;
      inUse.delete(plan);
      if (free.length < 2) free.push(buf);
    },
    close(): void {
      void worker.terminate();
    },
  };
  return reader;
}
