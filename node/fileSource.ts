/**
 * A file as a byte source (io/byteSource.ts): reads at offsets with `fs.readSync`, so a file
 * of any size is read piece by piece and never held whole. Counts the bytes it has read (for
 * the progress of loading).
 */
import * as fs from 'node:fs';
import { DitMoeError } from '../core/errors.js';
import { checkRange, type ByteSource } from '../io/byteSource.js';

/** One read call at most this long (Node refuses reads of 2 GiB and more). */
const CHUNK = 1 << 30;

export interface FileSource extends ByteSource {
  readonly file: string;
  /** Bytes read so far. */
  bytesRead: number;
  close(): void;
}

function cannot(e: unknown, file: string): DitMoeError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new DitMoeError('no such file', file);
  if (code === 'EISDIR') return new DitMoeError('is a folder, expected a file', file);
  return new DitMoeError(`cannot read (${code ?? (e as Error).message})`, file);
}

/** Opens `file` for reading by offset (its descriptor stays open until `close`). */
export function openFileSource(file: string): FileSource {
  let fd: number;
  let size: number;
  try {
    fd = fs.openSync(file, 'r');
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) {
      fs.closeSync(fd);
      throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    }
    // a device or a pipe (/dev/zero) has no size to read by offset and never ends: only regular files
    if (!st.isFile()) {
      fs.closeSync(fd);
      throw new DitMoeError('is not a regular file (a device or a pipe is never read)', file);
    }
    size = st.size;
  } catch (e) {
    throw e instanceof DitMoeError ? e : cannot(e, file);
  }
  const src: FileSource = {
    file,
    size,
    bytesRead: 0,
    read(offset, length, into) {
      checkRange(size, offset, length, file);
      const out = into ? into.subarray(0, length) : new Uint8Array(length);
      readFully(fd, file, out, offset);
      src.bytesRead += length;
      return out;
    },
    close() {
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
    },
  };
  return src;
}

/** Fills `out` from the file at `offset` (reads may return short). */
export function readFully(fd: number, file: string, out: Uint8Array, offset: number): void {
  let done = 0;
  while (done < out.length) {
    let n: number;
    try {
      n = fs.readSync(fd, out, done, Math.min(CHUNK, out.length - done), offset + done);
    } catch (e) {
      throw cannot(e, file);
    }
    if (n === 0) throw new DitMoeError(`ends at ${offset + done} bytes while reading ${out.length} at ${offset}: the file shrank while being read`, file);
    done += n;
  }
}
