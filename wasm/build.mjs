// Compiles wasm/assembly/*.ts to wasm/build/kernels.wasm and kernels-mt.wasm with AssemblyScript (asconfig.json,
// targets "release" and "threads": SIMD, stub runtime, memory imported from the host,
// shared in the threads build). Run by
// `npm run build:wasm`, and so by `npm run build` and `npm ci` (prepare).
import asc from 'assemblyscript/asc';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.join(root, 'wasm', 'assembly');
const entries = fs
  .readdirSync(srcDir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .sort()
  .map((f) => path.posix.join('wasm', 'assembly', f));
fs.mkdirSync(path.join(root, 'wasm', 'build'), { recursive: true });

process.chdir(root);
// release: one thread, a plain imported memory (kernels.wasm);
// threads: the same kernels on a shared imported memory, for worker threads (kernels-mt.wasm)
for (const [target, file] of [['release', 'kernels.wasm'], ['threads', 'kernels-mt.wasm']]) {
  const { error, stderr } = await asc.main([...entries, '--config', 'asconfig.json', '--target', target], {});
  if (error) {
    process.stderr.write(stderr.toString());
    console.error(`wasm/build.mjs: AssemblyScript compilation failed (target ${target}): ${error.message}`);
    process.exit(1);
  }
  const out = path.join(root, 'wasm', 'build', file);
  console.log(`wasm/build.mjs: wrote ${path.relative(root, out)} (${fs.statSync(out).size} bytes) from ${entries.length} files`);
}
