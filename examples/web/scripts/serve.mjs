// A small static file server for the demo, on 127.0.0.1 only.
//
//   node scripts/serve.mjs [--root DIR] [--port PORT]
//
// `.csv` files are sent like a slow network would: in CHUNK-byte pieces with a pause
// between them (chunked transfer encoding, no Content-Length), so the page's Rust
// code really waits for the body chunk by chunk.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';

const TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.mjs': 'text/javascript; charset=utf-8',
    '.wasm': 'application/wasm',
    '.css': 'text/css; charset=utf-8',
    '.csv': 'text/csv; charset=utf-8',
    '.json': 'application/json',
    '.ts': 'text/plain; charset=utf-8',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts serving `root`; resolves to the listening `http.Server` (port 0: any free port). */
export function serve({ root, port = 8000, host = '127.0.0.1', chunk = 8192, delayMs = 10 }) {
    const base = resolve(root);
    const server = createServer(async (req, res) => {
        try {
            let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
            if (path.endsWith('/')) path += 'index.html';
            const file = normalize(join(base, path));
            if (file !== base && !file.startsWith(base + sep)) {
                res.writeHead(403).end('forbidden');
                return;
            }
            let body;
            try {
                body = await readFile(file);
            } catch {
                res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
                return;
            }
            const type = TYPES[extname(file)] ?? 'application/octet-stream';
            if (extname(file) !== '.csv') {
                res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
                return;
            }
            res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
            for (let at = 0; at < body.length; at += chunk) {
                if (res.destroyed) return;
                res.write(body.subarray(at, at + chunk));
                await sleep(delayMs);
            }
            res.end();
        } catch (e) {
            console.error(e);
            if (!res.headersSent) res.writeHead(500);
            res.end();
        }
    });
    return new Promise((ok, fail) => {
        server.once('error', fail);
        server.listen(port, host, () => ok(server));
    });
}

if (import.meta.url === `file://${process.argv[1]}`) {
    const args = process.argv.slice(2);
    const opt = (name, dflt) => {
        const i = args.indexOf(name);
        return i >= 0 ? args[i + 1] : dflt;
    };
    const root = opt('--root', 'dist');
    const server = await serve({ root, port: Number(opt('--port', '8000')) });
    const { address, port } = server.address();
    console.log(`serving ${resolve(root)} on http://${address}:${port}/  (Ctrl-C stops)`);
}
