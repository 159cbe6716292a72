/**
 * GET requests over Node's own http and https modules: an Agent per
 * protocol keeps at most N keep-alive connections per origin (requests
 * beyond that wait for a free one), redirects are followed, and a request
 * fails when response headers do not come, or the body stops flowing, in
 * time. That is the part of undici nsbox used, without undici's 500 KB of
 * JavaScript and the WebAssembly HTTP parser it compiles on the first
 * connection of every run (node:http parses with the llhttp built into
 * Node): ~40 ms of each bootstrap's start, measured on a 2-core VM.
 */
import * as http from 'node:http';
import * as https from 'node:https';

/** Limits of a Pool. */
export interface PoolOptions {
  /** Connections per origin. */
  connections: number;
  /** How long an idle connection is kept open, in ms. */
  keepAliveMs: number;
  /** Time to wait for response headers, in ms. */
  headersTimeoutMs: number;
  /** Time the body may stall between two chunks, in ms. */
  bodyTimeoutMs: number;
  /** Redirects followed before giving up. */
  maxRedirections: number;
}

/** A response whose body must be read to the end, dumped or destroyed. */
export interface PoolResponse {
  statusCode: number;
  /** Header names lowercased (Node's form: a few are arrays). */
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage & { dump(): Promise<void> };
  /** The URL that answered (after redirects). */
  url: string;
}

/** A network failure with a code, like Node's own (ECONNRESET…). */
class PoolError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Keep-alive connections with a cap per origin.
 *
 * @example
 * const pool = new Pool({ connections: 8, keepAliveMs: 10_000, headersTimeoutMs: 30_000, bodyTimeoutMs: 60_000, maxRedirections: 5 });
 * const res = await pool.request('http://127.0.0.1:8080/x', { headers: { 'user-agent': 'nsbox' } });
 * for await (const chunk of res.body) use(chunk);
 * pool.close();
 */
export class Pool {
  readonly #http: http.Agent;
  readonly #https: https.Agent;

  constructor(readonly options: PoolOptions) {
    const agent = { keepAlive: true, maxSockets: options.connections, timeout: options.keepAliveMs, scheduling: 'fifo' as const };
    this.#http = new http.Agent(agent);
    this.#https = new https.Agent(agent);
  }

  /** GET `url`, following redirects; resolves when the final response's headers are in. */
  async request(url: string, opts: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<PoolResponse> {
    let current = new URL(url);
    for (let hops = 0; ; hops++) {
      const res = await this.#once(current, opts);
      const location = res.headers.location;
      if (!REDIRECTS.has(res.statusCode ?? 0) || !location) return withDump(res, current.href);
      res.resume(); // let the connection go back to the pool
      if (hops >= this.options.maxRedirections) throw new PoolError(`more than ${this.options.maxRedirections} redirects`, 'EREDIRECTS');
      current = new URL(location, current);
      if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new PoolError(`redirected to \`${current.href}\``, 'EREDIRECTS');
    }
  }

  /** Closes every connection, idle or not. */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }

  #once(url: URL, opts: { headers?: Record<string, string>; signal?: AbortSignal }): Promise<http.IncomingMessage> {
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') return Promise.reject(new PoolError(`unsupported URL scheme \`${url.protocol}\``, 'EPROTO'));
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(url, { method: 'GET', headers: opts.headers, agent: secure ? this.#https : this.#http, signal: opts.signal });
      const headersTimer = setTimeout(() => req.destroy(new PoolError(`no response headers within ${this.options.headersTimeoutMs} ms`, 'ETIMEDOUT')), this.options.headersTimeoutMs);
      req.once('error', (err) => {
        clearTimeout(headersTimer);
        reject(err);
      });
      req.once('response', (res) => {
        clearTimeout(headersTimer);
        // the socket's idle timer, while this response is read: a stalled body fails
        res.setTimeout(this.options.bodyTimeoutMs, () => res.destroy(new PoolError(`the body stalled for ${this.options.bodyTimeoutMs} ms`, 'ETIMEDOUT')));
        resolve(res);
      });
      req.end();
    });
  }
}

function withDump(res: http.IncomingMessage, url: string): PoolResponse {
  const body = Object.assign(res, {
    dump: () => new Promise<void>((resolve) => {
      if (res.complete || res.destroyed) return resolve();
      res.once('end', () => resolve()).once('close', () => resolve()).once('error', () => resolve());
      res.resume();
    }),
  });
  return { statusCode: res.statusCode ?? 0, headers: res.headers, body, url };
}
