/**
 * File access at the Node edge (the CLI, training runs, the analysis report; the library itself works on bytes).
 * Every write goes to a temporary file in the same folder and is renamed into place, so a
 * crash or an error never leaves a partial output behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitMoeError } from '../core/errors.js';
import { readSafetensors, type SafeTensors } from '../io/safetensors.js';
import { cleanStaleTemps } from './outputs.js';
import { openFileSource } from './fileSource.js';

export function readBytes(file: string): Uint8Array {
  try {
    // a device or a pipe (/dev/zero, /dev/urandom) would be read forever: only regular files
    const st = fs.statSync(file);
    if (st.isDirectory()) throw new DitMoeError('is a folder, expected a file', file);
    if (!st.isFile()) throw new DitMoeError('is not a regular file (a device or a pipe is never read)', file);
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    if (e instanceof DitMoeError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DitMoeError('no such file', file);
    if (code === 'EISDIR') throw new DitMoeError('is a folder, expected a file', file);
    throw new DitMoeError(`cannot read (${code ?? (e as Error).message})`, file);
  }
}

/** A safetensors file's tensors, read tensor by tensor at their offsets (no size limit but memory). */
export function readSafetensorsFile(file: string): SafeTensors {
  const src = openFileSource(file);
  try {
    return readSafetensors(src, file);
  } finally {
    src.close();
  }
}

/** Writes `bytes` to `file` atomically: a temporary file beside it, then a rename. */
export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  const dir = path.dirname(path.resolve(file));
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DitMoeError(`cannot create folder ${dir} (${(e as NodeJS.ErrnoException).code})`, file);
  }
  cleanStaleTemps(dir); // what interrupted writes left here
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* nothing left to clean */
    }
    throw new DitMoeError(`cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
}
