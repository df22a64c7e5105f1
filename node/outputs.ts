/**
 * What a command may write, checked before any work: an output that is one of the command's
 * inputs (after symlinks, `..`, hard links: the same device and inode) or another of its
 * outputs is refused, so `sample --model m.safetensors --out m.safetensors` cannot destroy the
 * model. And the temporary files of interrupted atomic writes (cli/files.ts names them
 * `.NAME.PID.MS.tmp`) are removed once their process is gone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitMoeError } from '../core/errors.js';

/** A file named on the command line: the flag (or argument name) and the path; undefined = not given. */
export type NamedFile = [flag: string, file: string | undefined];

/** The path with every existing ancestor's symlinks resolved, so "a/../b" and a link to b are b. */
function resolvedPath(p: string): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(resolvedPath(parent), path.basename(abs));
  }
}

/** What makes two paths the same file: device and inode when it exists (hard links too), else the resolved path. */
function fileKey(p: string): string {
  try {
    const s = fs.statSync(p);
    return `inode ${s.dev}:${s.ino}`;
  } catch {
    return `path ${resolvedPath(p)}`;
  }
}

/**
 * Refuses (one line naming both) an output that is one of the inputs, or that two outputs are
 * the same file. Call before any work; undefined entries (options not given) are skipped.
 */
export function refuseOverwritingInputs(outputs: NamedFile[], inputs: NamedFile[]): void {
  const seen = new Map<string, string>();
  for (const [flag, file] of inputs) if (file !== undefined && fs.existsSync(file)) seen.set(fileKey(file), `the input ${flag} ${file}`);
  for (const [flag, file] of outputs) {
    if (file === undefined) continue;
    const key = fileKey(file);
    const clash = seen.get(key);
    if (clash) throw new DitMoeError(`is ${clash}; writing it would destroy it (choose another output)`, `${flag} ${file}`);
    seen.set(key, `also the output ${flag} ${file}`);
  }
}

/** A folder output: refused when it exists and is not a folder (before `mkdir` fails with ENOTDIR halfway). */
export function checkOutputFolder(flag: string, dir: string): void {
  let s: fs.Stats;
  try {
    s = fs.statSync(dir);
  } catch {
    // missing: created later; but a file among its ancestors makes that impossible
    const parent = path.dirname(path.resolve(dir));
    if (parent !== path.resolve(dir)) checkOutputFolder(flag, parent);
    return;
  }
  if (!s.isDirectory()) throw new DitMoeError(`${dir === flag ? '' : `${dir} `}exists and is not a folder`.trim(), flag);
}

/** `.NAME.PID.MS.tmp`: the temporary name writeFileAtomic gives a file before renaming it into place. */
const TEMP_NAME = /^\..+\.(\d+)\.(\d+)\.tmp$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

const cleaned = new Set<string>();

/**
 * Removes the temporary files of our own naming in `dir` whose writing process has ended (a
 * kill between write and rename leaves them; a checkpoint's can be tens of MB). Once per
 * folder per process; returns the names removed.
 */
export function cleanStaleTemps(dir: string): string[] {
  const key = path.resolve(dir);
  if (cleaned.has(key)) return [];
  cleaned.add(key);
  let names: string[];
  try {
    names = fs.readdirSync(key);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      if (fs.lstatSync(path.join(key, name)).isFile()) {
        fs.rmSync(path.join(key, name));
        removed.push(name);
      }
    } catch {
      /* gone already, or not ours to remove */
    }
  }
  return removed;
}
