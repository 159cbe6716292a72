/**
 * Downloads a list of files into the cache in parallel, each verified by
 * size and digest before it is committed. Both engines call this with the
 * items their repository index gave them (Packages / primary.xml).
 */
import { rmSync } from 'node:fs';
import { AbortedError, NsboxError, VerifyError } from '../errors.js';
import type { Cache } from './cache.js';
import { formatDigest, newHash, toDigest, type Digest } from './digest.js';
import type { HttpClient } from './http.js';
import type { DownloadEvent, ProgressSink } from './progress.js';

/** One file to fetch. `digest` is a SHA256 hex string or `{ algo, hex }` (RPM repos may say sha1/sha512). */
export interface FetchItem {
  url: string;
  digest: string | { algo: string; hex: string };
  /** Expected size in bytes, checked when given. */
  size?: number;
  /** Name for messages and progress, e.g. `libc6_2.41-12_amd64.deb`. */
  name: string;
}

/** Where an item ended up. */
export interface FetchResult {
  item: FetchItem;
  /** The verified file in the cache. */
  path: string;
  /** True when it was already in the cache and nothing was downloaded. */
  cached: boolean;
}

/** Options of fetchAll. */
export interface FetchOptions {
  http: HttpClient;
  cache: Cache;
  /** Downloads at once (default 8; the HttpClient caps connections per origin too). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Receives `download` events (throttled to ~10/s, plus a final one) and `item` events. */
  onProgress?: ProgressSink;
  /** Minimum ms between two download events (default 100). */
  progressIntervalMs?: number;
  /** Called as each item is verified and in the cache (downloaded or found), in completion order. */
  onFile?: (index: number, result: FetchResult) => void;
}

/**
 * Fetches every item into the cache, verified, and returns their paths in
 * the order given. The first failure cancels the rest and is thrown
 * (NetworkError, VerifyError or AbortedError).
 *
 * @example
 * const results = await fetchAll(
 *   [{ url: `${mirror}/pool/main/h/hello/hello_2.10-3_amd64.deb`, digest: sha256hex, size: 53000, name: 'hello' }],
 *   { http, cache, onProgress: (e) => renderer.emit(e) },
 * );
 * results[0].path // /var/cache/nsbox/by-sha256/ab/ab…
 */
export async function fetchAll(items: readonly FetchItem[], opts: FetchOptions): Promise<FetchResult[]> {
  const digests = items.map((it) => toDigest(it.digest));
  const stats = new ProgressCounter(items, opts);
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const byKey = new Map<string, Promise<{ path: string; cached: boolean }>>();
  const results: FetchResult[] = new Array(items.length);
  let next = 0;
  let firstError: unknown;

  const worker = async () => {
    while (next < items.length && !inner.signal.aborted) {
      const i = next++;
      const item = items[i];
      const d = digests[i];
      const key = formatDigest(d);
      let p = byKey.get(key);
      const dup = p !== undefined;
      if (!p) {
        p = fetchOne(item, d, opts, inner.signal, stats);
        byKey.set(key, p);
      }
      try {
        const r = await p;
        results[i] = { item, path: r.path, cached: r.cached || dup };
        stats.itemDone(item, results[i].cached);
        opts.onFile?.(i, results[i]);
      } catch (err) {
        if (firstError === undefined) firstError = err;
        inner.abort(err);
        return;
      }
    }
  };

  try {
    const n = Math.max(1, Math.min(opts.concurrency ?? 8, items.length));
    await Promise.all(Array.from({ length: n }, worker));
    if (firstError === undefined && opts.signal?.aborted) firstError = new AbortedError('download interrupted');
    if (firstError !== undefined) throw firstError;
    stats.emit(true);
    return results;
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function fetchOne(item: FetchItem, d: Digest, opts: FetchOptions, signal: AbortSignal, stats: ProgressCounter): Promise<{ path: string; cached: boolean }> {
  const hit = await opts.cache.lookup(d, item.size);
  if (hit) {
    stats.addCached(item.size ?? 0);
    return { path: hit, cached: true };
  }
  let lastProblem = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    let seen = 0;
    let r: Awaited<ReturnType<typeof downloadToCache>>;
    try {
      r = await downloadToCache(opts.http, opts.cache, item.url, d, {
        name: item.name,
        size: item.size,
        signal,
        onChunk: (c) => {
          seen += c.length;
          stats.addBytes(c.length);
        },
        onReset: () => {
          stats.addBytes(-seen);
          seen = 0;
        },
      });
    } catch (err) {
      if (signal.aborted && !(err instanceof NsboxError)) throw new AbortedError('download interrupted', { cause: err });
      throw err;
    }
    if ('path' in r) return { path: r.path, cached: false };
    lastProblem = item.size !== undefined && r.bytes !== item.size
      ? `size mismatch (expected ${item.size} bytes, got ${r.bytes})`
      : `${d.algo} mismatch (expected ${d.hex}, got ${r.actual})`;
    stats.addBytes(-seen);
  }
  throw new VerifyError(`cannot verify \`${item.name}\` from \`${item.url}\`: ${lastProblem}`, {
    hint: 'the mirror may be out of sync or the transfer corrupted; try again later or another mirror (--mirror)',
  });
}

/** Counts bytes and items and emits throttled download events. */
class ProgressCounter {
  bytes = 0;
  items = 0;
  cachedItems = 0;
  readonly totalBytes: number;
  readonly totalItems: number;
  #last = 0;
  #samples: Array<[number, number]> = [];
  #opts: FetchOptions;

  constructor(items: readonly FetchItem[], opts: FetchOptions) {
    this.totalBytes = items.reduce((s, it) => s + (it.size ?? 0), 0);
    this.totalItems = items.length;
    this.#opts = opts;
  }

  addBytes(n: number): void {
    this.bytes += n;
    this.emit(false);
  }

  addCached(n: number): void {
    this.bytes += n;
  }

  itemDone(item: FetchItem, cached: boolean): void {
    this.items++;
    if (cached) this.cachedItems++;
    this.#opts.onProgress?.({ type: 'item', phase: 'download', name: item.name, status: cached ? 'cached' : 'done' });
    this.emit(false);
  }

  emit(final: boolean): void {
    const sink = this.#opts.onProgress;
    if (!sink) return;
    const now = Date.now();
    if (!final && now - this.#last < (this.#opts.progressIntervalMs ?? 100)) return;
    this.#last = now;
    this.#samples.push([now, this.bytes]);
    while (this.#samples.length > 2 && now - this.#samples[0][0] > 3000) this.#samples.shift();
    const [t0, b0] = this.#samples[0];
    const rate = now > t0 ? Math.max(0, ((this.bytes - b0) * 1000) / (now - t0)) : 0;
    const e: DownloadEvent = {
      type: 'download',
      bytes: this.bytes,
      totalBytes: this.totalBytes,
      items: this.items,
      totalItems: this.totalItems,
      cachedItems: this.cachedItems,
      rate: Math.round(rate),
    };
    sink(e);
  }
}

/**
 * One download of `url` into the cache under digest `d`: hashed as it
 * arrives (`onChunk` sees the same chunks, `onReset` a restart from byte 0),
 * committed only when its digest (and `size`, when given) match. Returns
 * the committed path, or what arrived instead (nothing of it is kept).
 *
 * @example
 * const r = await downloadToCache(http, cache, url, { algo: 'sha256', hex }, { size });
 * if (!('path' in r)) throw new VerifyError(`got ${r.actual}`);
 */
export async function downloadToCache(
  http: HttpClient, cache: Cache, url: string, d: Digest,
  opts: { size?: number; name?: string; signal?: AbortSignal; onChunk?: (chunk: Buffer) => void; onReset?: () => void } = {},
): Promise<{ path: string; bytes: number } | { bytes: number; actual: string }> {
  const tmp = await cache.tempPath(opts.name ?? url.slice(url.lastIndexOf('/') + 1));
  let hash = newHash(d.algo);
  let committed = false;
  try {
    const { bytes } = await http.download(url, tmp, {
      signal: opts.signal,
      onChunk: (c) => {
        hash.update(c);
        opts.onChunk?.(c);
      },
      onReset: () => {
        hash = newHash(d.algo);
        opts.onReset?.();
      },
    });
    const actual = hash.digest('hex');
    if ((opts.size !== undefined && bytes !== opts.size) || actual !== d.hex) return { bytes, actual };
    const path = await cache.commit(tmp, d);
    committed = true;
    return { path, bytes };
  } finally {
    if (!committed) rmSync(tmp, { force: true });
  }
}
