/** Shared test helpers for bootstrap tests: temp dirs, a loopback HTTP server, shell. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp directory removed by the returned cleanup. */
export function tempDir(prefix = 'nsbox-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a host command, returns stdout. */
export function sh(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer | string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

export type Handler = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

/** A loopback HTTP server; `hits` counts requests per path. */
export async function serve(handler: Handler): Promise<{ url: string; hits: Map<string, number>; requests: IncomingMessage[]; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    const n = (hits.get(req.url ?? '') ?? 0) + 1;
    hits.set(req.url ?? '', n);
    requests.push(req);
    handler(req, res, n);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Serves `body` honouring `Range: bytes=N-`. */
export function sendWithRange(req: IncomingMessage, res: ServerResponse, body: Buffer, headers: Record<string, string> = {}): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]);
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, ...headers });
    res.end(body.subarray(start));
  } else {
    res.writeHead(200, { 'content-length': body.length, ...headers });
    res.end(body);
  }
}

/** Whether a host tool exists (tests that compare with it skip otherwise). */
export function have(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
