/**
 * A random-access byte source: what the file readers (safetensors, the `.pt` zip) read from,
 * so that a file of any size is read tensor by tensor at its offsets and never held whole.
 * `memorySource` serves bytes already in memory (a browser's fetched file, a test's buffer);
 * the Node edge gives a file-backed one (cli/fileSource.ts). No file system here.
 */
import { DitMoeError } from '../core/errors.js';

export interface ByteSource {
  /** Its length in bytes. */
  readonly size: number;
  /**
   * Bytes [offset, offset + length): into `into` when given (from its start), else into a new
   * array, or a view of the source's own memory when it has some. Throws past the end.
   */
  read(offset: number, length: number, into?: Uint8Array): Uint8Array;
}

/** Checks [offset, offset + length) lies in a source of `size` bytes. */
export function checkRange(size: number, offset: number, length: number, where: string): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0)) throw new DitMoeError(`cannot read ${length} bytes at offset ${offset}`, where);
  if (offset + length > size) throw new DitMoeError(`bytes ${offset}..${offset + length} run past the end of the file (${size} bytes): truncated?`, where);
}

/** A source over bytes in memory; reads without `into` are views (no copy). */
export function memorySource(bytes: Uint8Array, where = 'bytes'): ByteSource {
  return {
    size: bytes.length,
    read(offset, length, into) {
      checkRange(bytes.length, offset, length, where);
      const view = bytes.subarray(offset, offset + length);
      if (!into) return view;
      into.set(view);
      return into.subarray(0, length);
    },
  };
}
