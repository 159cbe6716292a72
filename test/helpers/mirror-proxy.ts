/**
 * A loopback HTTP server in front of real archives, as a local mirror or
 * an apt proxy would be: each route maps a path prefix to an upstream base
 * URL, or to 404. Records every path asked for.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface MirrorProxy { url: string; requests: string[]; close(): Promise<void> }

/** routes: prefix ('/', '/debian/') → upstream base URL, or null for 404. Longest prefix wins. */
export async function startMirrorProxy(routes: Record<string, string | null>): Promise<MirrorProxy> {
  const requests: string[] = [];
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    const prefix = prefixes.find((p) => path.startsWith(p));
    const upstream = prefix === undefined ? null : routes[prefix];
    if (!upstream || req.method !== 'GET') { res.writeHead(404).end(); return; }
    const target = new URL(path.slice(prefix!.length), upstream.endsWith('/') ? upstream : `${upstream}/`);
    const client = target.protocol === 'https:' ? https : http;
    const up = client.get(target, { headers: req.headers.range ? { range: req.headers.range } : {} }, (r) => {
      res.writeHead(r.statusCode ?? 502, { ...(r.headers['content-length'] ? { 'content-length': r.headers['content-length'] } : {}), ...(r.headers['content-range'] ? { 'content-range': r.headers['content-range'] } : {}) });
      r.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
