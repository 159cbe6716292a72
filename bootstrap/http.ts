/**
 * The HTTP client every download goes through: keep-alive connections
 * with a cap per origin (bootstrap/http-pool.ts; built-in fetch opens a
 * connection per request when fired at once), redirects, retries with exponential
 * backoff on network errors and 5xx/429, and resume with Range when a
 * transfer breaks midway. `file://` URLs are served from disk the same way,
 * for tests and local mirrors.
 */
import { readFile, stat } from 'node:fs/promises';
import { closeSync, createReadStream, ftruncateSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from './http-pool.js';
import { AbortedError, NetworkError } from '../errors.js';
import { writeAll } from './write-all.js';

/** Options of an HttpClient; every field has a default. */
export interface HttpOptions {
  /** Connections per origin (default 8). */
  connections?: number;
  /** Attempts per request, the first included (default 4). */
  tries?: number;
  /** First backoff delay in ms, doubled per retry (default 500). */
  retryDelayMs?: number;
  /** Upper bound of one backoff delay in ms (default 10 000). */
  maxRetryDelayMs?: number;
  /** Time to wait for response headers, and between body chunks, in ms (default 30 000 / 60 000). */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** User-Agent header (default `nsbox`). */
  userAgent?: string;
  /** Called before each retry, e.g. to log "retrying …". */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void;
}

/** Per-request options. */
export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Refuse bodies larger than this (getBuffer/getText; default 256 MiB). */
  maxBytes?: number;
}

/** A buffered response: status 200, 206 or 304 (others become errors). */
export interface HttpResponse {
  url: string;
  status: number;
  /** Header names lowercased. */
  headers: Record<string, string>;
  body: Buffer;
}

/** Per-download options. */
export interface DownloadOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Called with every chunk written, in file order (hash it here). */
  onChunk?: (chunk: Buffer) => void;
  /** Called when the transfer had to restart from byte 0: drop what onChunk saw. */
  onReset?: () => void;
}

/** An HTTP status the client does not retry (404, 403, 410, …). */
class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * HTTP(S) and file:// client with a per-origin connection cap.
 *
 * @example
 * const http = new HttpClient({ connections: 8 });
 * const text = await http.getText('http://mirror.example/debian/dists/trixie/InRelease');
 * await http.download(url, '/tmp/x.deb', { onChunk: (c) => hash.update(c) });
 * await http.close();
 */
export class HttpClient {
  readonly options: Required<Omit<HttpOptions, 'onRetry'>> & Pick<HttpOptions, 'onRetry'>;
  #pool: Pool;

  constructor(opts: HttpOptions = {}) {
    this.options = {
      connections: opts.connections ?? 8,
      tries: Math.max(1, opts.tries ?? 4),
      retryDelayMs: opts.retryDelayMs ?? 500,
      maxRetryDelayMs: opts.maxRetryDelayMs ?? 10_000,
      headersTimeoutMs: opts.headersTimeoutMs ?? 30_000,
      bodyTimeoutMs: opts.bodyTimeoutMs ?? 60_000,
      userAgent: opts.userAgent ?? 'nsbox',
      onRetry: opts.onRetry,
    };
    this.#pool = new Pool({
      connections: this.options.connections,
      keepAliveMs: 10_000,
      headersTimeoutMs: this.options.headersTimeoutMs,
      bodyTimeoutMs: this.options.bodyTimeoutMs,
      maxRedirections: 5,
    });
  }

  /**
   * GET a small resource into memory, with retries. Status 304 is returned
   * (with an empty body) when the caller sent a conditional header.
   *
   * @example
   * const res = await http.get(url, { headers: { 'if-none-match': etag } });
   * if (res.status === 304) useCachedCopy();
   */
  async get(url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    if (url.startsWith('file:')) return this.#getFile(url, opts);
    const maxBytes = opts.maxBytes ?? 256 << 20;
    return this.#withRetries(url, opts.signal, async () => {
      const res = await this.#pool.request(url, { headers: { 'user-agent': this.options.userAgent, ...opts.headers }, signal: opts.signal });
      if (res.statusCode !== 200 && res.statusCode !== 206 && res.statusCode !== 304) {
        await res.body.dump().catch(() => {});
        throw new HttpStatusError(res.statusCode);
      }
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const chunk of res.body) {
        n += (chunk as Buffer).length;
        if (n > maxBytes) {
          res.body.destroy();
          throw new NetworkError(`cannot download \`${url}\`: larger than ${maxBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      return { url, status: res.statusCode, headers: flattenHeaders(res.headers), body: Buffer.concat(chunks) };
    });
  }

  /** GET into a Buffer; see get(). */
  async getBuffer(url: string, opts: RequestOptions = {}): Promise<Buffer> {
    return (await this.get(url, opts)).body;
  }

  /**
   * GET as UTF-8 text.
   *
   * @example
   * const release = await http.getText(`${mirror}/dists/trixie/InRelease`);
   */
  async getText(url: string, opts: RequestOptions = {}): Promise<string> {
    return (await this.getBuffer(url, opts)).toString('utf8');
  }

  /**
   * Streams a URL into `dest` (created or truncated). A transfer that breaks
   * midway is resumed with `Range` (guarded by `If-Range` when the server
   * gave a validator); a server that answers 200 instead of 206 makes it
   * restart from byte 0, announced by `onReset`. Returns the bytes written.
   *
   * @example
   * const h = createHash('sha256');
   * await http.download(url, tmp, { onChunk: (c) => h.update(c), onReset: () => (h = createHash('sha256')) });
   */
  async download(url: string, dest: string, opts: DownloadOptions = {}): Promise<{ bytes: number }> {
    // Chunks are written synchronously as they arrive: a thread-pool round trip per 64 KiB chunk cost more than the write.
    const fd = openSync(dest, 'w');
    try {
      if (url.startsWith('file:')) return await this.#downloadFile(url, fd, opts);
      let offset = 0;
      let validator: string | undefined;
      return await this.#withRetries(url, opts.signal, async (noteProgress) => {
        const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...opts.headers };
        if (offset > 0) {
          headers.range = `bytes=${offset}-`;
          if (validator) headers['if-range'] = validator;
        }
        const res = await this.#pool.request(url, { headers, signal: opts.signal });
        const h = flattenHeaders(res.headers);
        if (res.statusCode === 416 && offset > 0 && h['content-range'] === `bytes */${offset}`) {
          await res.body.dump().catch(() => {});
          return { bytes: offset };
        }
        if (res.statusCode === 206 && offset > 0) {
          const m = /^bytes (\d+)-/.exec(h['content-range'] ?? '');
          if (!m || Number(m[1]) !== offset) {
            res.body.destroy();
            throw new Error(`server resumed at the wrong offset (${h['content-range'] ?? 'no Content-Range'})`);
          }
        } else if (res.statusCode === 200) {
          if (offset > 0) {
            offset = 0;
            ftruncateSync(fd, 0);
            opts.onReset?.();
          }
        } else {
          await res.body.dump().catch(() => {});
          throw new HttpStatusError(res.statusCode);
        }
        validator = h.etag && !h.etag.startsWith('W/') ? h.etag : (h['last-modified'] ?? validator);
        for await (const chunk of res.body) {
          const buf = chunk as Buffer;
          writeAll(fd, buf, offset);
          offset += buf.length;
          opts.onChunk?.(buf);
          noteProgress();
        }
        return { bytes: offset };
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Closes the keep-alive connections. */
  async close(): Promise<void> {
    this.#pool.close();
  }

  /**
   * Runs `attempt` up to `tries` times with exponential backoff. An attempt
   * that made progress (calls noteProgress) does not count against the tries.
   */
  async #withRetries<T>(url: string, signal: AbortSignal | undefined, attempt: (noteProgress: () => void) => Promise<T>): Promise<T> {
    let failures = 0;
    for (;;) {
      if (signal?.aborted) throw new AbortedError(`download of \`${url}\` interrupted`);
      let progressed = false;
      try {
        return await attempt(() => (progressed = true));
      } catch (err) {
        if (signal?.aborted || isAbort(err)) throw new AbortedError(`download of \`${url}\` interrupted`, { cause: err });
        if (err instanceof NetworkError) throw err;
        const status = err instanceof HttpStatusError ? err.status : undefined;
        if (status !== undefined && !RETRYABLE_STATUS.has(status)) throw httpError(url, status);
        failures = progressed ? 1 : failures + 1;
        if (failures >= this.options.tries) {
          if (status !== undefined) throw httpError(url, status, failures);
          throw new NetworkError(`cannot download \`${url}\`: ${describe(err)} (after ${failures} tries)`, {
            cause: err,
            hint: 'check the network connection and the mirror URL (--mirror)',
          });
        }
        const delayMs = Math.min(this.options.maxRetryDelayMs, this.options.retryDelayMs * 2 ** (failures - 1));
        this.options.onRetry?.({ url, attempt: failures + 1, delayMs, reason: status ? `HTTP ${status}` : describe(err) });
        try {
          await sleep(delayMs, undefined, { signal });
        } catch (e) {
          throw new AbortedError(`download of \`${url}\` interrupted`, { cause: e });
        }
      }
    }
  }

  async #getFile(url: string, opts: RequestOptions): Promise<HttpResponse> {
    const path = fileURLToPath(url);
    try {
      const [body, st] = await Promise.all([readFile(path, { signal: opts.signal }), stat(path)]);
      return { url, status: 200, headers: { 'last-modified': st.mtime.toUTCString(), 'content-length': String(body.length) }, body };
    } catch (err) {
      throw fileError(url, err, opts.signal);
    }
  }

  async #downloadFile(url: string, fd: number, opts: DownloadOptions): Promise<{ bytes: number }> {
    let offset = 0;
    try {
      for await (const chunk of createReadStream(fileURLToPath(url), { highWaterMark: 1 << 20, signal: opts.signal })) {
        const buf = chunk as Buffer;
        writeAll(fd, buf, offset);
        offset += buf.length;
        opts.onChunk?.(buf);
      }
    } catch (err) {
      throw fileError(url, err, opts.signal);
    }
    return { bytes: offset };
  }
}

function httpError(url: string, status: number, tries?: number): NetworkError {
  const after = tries && tries > 1 ? ` (after ${tries} tries)` : '';
  const hint =
    status === 404 || status === 410
      ? 'check the mirror URL, the release name and the architecture'
      : status === 401 || status === 403
        ? 'the mirror refused access; try another mirror (--mirror)'
        : 'the mirror is failing; try again later or another mirror (--mirror)';
  return new NetworkError(`cannot download \`${url}\`: HTTP ${status}${after}`, { hint });
}

function fileError(url: string, err: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted || isAbort(err)) return new AbortedError(`download of \`${url}\` interrupted`, { cause: err });
  const e = err as NodeJS.ErrnoException;
  const reason = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : describe(err);
  return new NetworkError(`cannot download \`${url}\`: ${reason}`, { cause: err, hint: 'check the local mirror path' });
}

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; code?: string };
  return e?.name === 'AbortError' || e?.code === 'ABORT_ERR';
}

/** One short reason from a network or system error. */
function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { message?: string; code?: string } };
  if (e?.cause?.message && !e.message) return e.cause.message;
  const msg = e?.message ?? String(err);
  return e?.code && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
