/**
 * Imports run one way. Every .ts file of the repository is parsed for its imports (static,
 * re-exports, dynamic `import('…')`); an import from a folder to a folder of a higher layer
 * fails, and so does any cycle between files. The layer order is declared here, once:
 *
 *   core                      errors, shapes, dtypes: imports nothing of ours
 *   ref                       operators, the model, diffusion
 *   io, render                file formats from bytes; pictures (PNG, SVG) from numbers
 *   node                      the Node edge's files: read, write atomically
 *   train, analysis, conform, wasm
 *   cli                       the command's flags
 *   bench, index.ts, spec     the top: benchmarks, the package entry, the specification
 *
 * A folder may import its own layer's folders (conform uses train's AdamW) as long as no cycle
 * forms. The browser-safe folders (core, ref, io, conform) import no `node:` module.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['ref'],
  ['io', 'render'],
  ['node'],
  ['train', 'analysis', 'conform', 'wasm'],
  ['cli'],
  ['bench', 'index.ts', 'node.ts', 'web', 'spec'],
];
const BROWSER_SAFE = ['core', 'ref', 'io', 'conform'];

/** Upward imports still allowed, each with the reason (none today). */
const KNOWN_UPWARD = new Set<string>();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'dist', 'golden', 'models', '.git']);

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    if (e.name.startsWith('.') || SKIP.has(e.name)) continue;
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...tsFiles(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const IMPORT = /(?:^|[\s;])(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** The module names a file imports, comments removed first. */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  for (const m of code.matchAll(IMPORT)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** The folder whose layer a file is in: its top folder, or the file itself at the root. */
function unitOf(file: string): string {
  const i = file.indexOf('/');
  return i < 0 ? file : file.slice(0, i);
}

function layerOf(file: string): number {
  const unit = unitOf(file);
  return LAYERS.findIndex((l) => l.includes(unit));
}

/** Our import graph: file → the files it imports (relative specifiers resolved, `.js` → `.ts`). */
function graph(files: readonly string[]): Map<string, string[]> {
  const known = new Set(files);
  const g = new Map<string, string[]>();
  for (const f of files) {
    const deps: string[] = [];
    for (const spec of importsOf(fs.readFileSync(path.join(root, f), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const base = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec));
      const target = [base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}/index.ts`].find((c) => known.has(c));
      if (target) deps.push(target);
    }
    g.set(f, deps);
  }
  return g;
}

/** Every import from a lower layer to a higher one, as "from -> to". */
export function upward(g: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [f, deps] of g) for (const d of deps) if (layerOf(d) > layerOf(f)) bad.push(`${f} -> ${d}`);
  return bad;
}

/** The cycles of the graph (each once, as a path that returns to its start). */
export function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 1 | 2>(); // 1: on the stack, 2: done
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 1);
    stack.push(f);
    for (const d of g.get(f) ?? []) {
      if (state.get(d) === 1) found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of [...g.keys()].sort()) if (!state.has(f)) visit(f);
  return found;
}

const files = tsFiles('');
const g = graph(files);

describe('imports run one way', () => {
  it('every file is in a declared layer', () => {
    expect(files.filter((f) => layerOf(f) < 0 && f !== 'vitest.config.ts')).toEqual([]);
  });

  it('no import runs upward', () => {
    expect(upward(g).filter((e) => !KNOWN_UPWARD.has(e))).toEqual([]);
  });

  it('the known exceptions still exist (so a fixed one is removed from the list)', () => {
    const up = new Set(upward(g));
    expect([...KNOWN_UPWARD].filter((e) => !up.has(e))).toEqual([]);
  });

  it('no cycle between files', () => {
    expect(cycles(g).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('the browser-safe folders import no node: module', () => {
    const bad = files.filter((f) => BROWSER_SAFE.includes(unitOf(f))).flatMap((f) =>
      importsOf(fs.readFileSync(path.join(root, f), 'utf8'))
        .filter((s) => s.startsWith('node:') || ['fs', 'path', 'worker_threads', 'os'].includes(s))
        .map((s) => `${f} imports ${s}`),
    );
    expect(bad).toEqual([]);
  });

  it('the checker itself sees an upward import and a cycle (planted)', () => {
    expect(importsOf("import { a } from './x.js';\nexport * from '../y.js';\nconst m = await import('./z.js');\n// import { no } from './comment.js'")).toEqual(['./x.js', '../y.js', './z.js']);
    const planted = new Map([
      ['ref/a.ts', ['cli/b.ts']],
      ['cli/b.ts', ['ref/c.ts']],
      ['ref/c.ts', ['ref/a.ts']],
    ]);
    expect(upward(planted)).toEqual(['ref/a.ts -> cli/b.ts']);
    expect(cycles(planted)).toEqual([['cli/b.ts', 'ref/c.ts', 'ref/a.ts', 'cli/b.ts']]);
  });
});
