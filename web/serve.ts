/**
 * A small static file server (node:http) for the explorer and the browser tests. With
 * `isolate` every response carries the cross-origin isolation headers
 *   Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp
 * (and Cross-Origin-Resource-Policy: same-origin), which give a page SharedArrayBuffer and so
 * the threaded wasm build; without them the page runs on one thread.
 *   node dist/web/serve.js [DIR=web/dist] [--port 8080] [--no-isolation]
 */
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `root` on 127.0.0.1 (port 0: any free one); resolves once listening. */
export function serveStatic(root: string, opts: { isolate?: boolean; port?: number } = {}): Promise<StaticServer> {
  const base = path.resolve(root);
  const server = http.createServer((req, res) => {
    const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
    if (opts.isolate) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' });
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400, headers).end('bad path');
      return;
    }
    let file = path.join(base, rel);
    if (file !== base && !file.startsWith(base + path.sep)) {
      res.writeHead(403, headers).end('forbidden');
      return;
    }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404, headers).end('not found');
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream', 'Content-Length': String(data.length) });
      res.end(data);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const addr = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${addr.port}/`, close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf('--port');
  const port = portAt >= 0 ? Number(args[portAt + 1]) : 8080;
  const isolate = !args.includes('--no-isolation');
  const dir = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--port') ?? path.join('web', 'dist');
  if (!fs.existsSync(path.join(dir, 'index.html'))) {
    process.stderr.write(`dit-moe web: ${dir}/index.html not found: build the page first (npm run web)\n`);
    process.exit(2);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`dit-moe web: --port: '${args[portAt + 1]}' is not a port number\n`);
    process.exit(2);
  }
  const s = await serveStatic(dir, { isolate, port });
  process.stdout.write(`serving ${dir} at ${s.url} (${isolate ? 'cross-origin isolated: threads' : 'not isolated: one thread'}); Ctrl-C stops\n`);
}
