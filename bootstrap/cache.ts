/**
 * The download cache (default `/var/cache/nsbox`).
 *
 * Layout:
 *   by-sha256/ab/abcdef…        content-addressed files (also by-sha512/, by-sha1/, by-md5/)
 *   by-url/<sha256(url)>        index files (InRelease, repomd.xml) cached per URL
 *   by-url/<sha256(url)>.json   their validators: { url, etag, lastModified, fetched }
 *   tmp/                        downloads in progress
 *
 * A file enters `by-*` only by rename(2) from `tmp/` after its digest was
 * verified, so a killed run leaves at most junk in `tmp/` (swept by
 * `sweepTemp`), never a wrong entry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, statSync } from 'node:fs';
import { readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NsboxError } from '../errors.js';
import type { Digest } from './digest.js';
import type { HttpClient, RequestOptions } from './http.js';

/** The cache directory used when none is given. */
export const DEFAULT_CACHE_DIR = '/var/cache/nsbox';

/** An index file served from the per-URL cache or the network. */
export interface IndexResult {
  data: Buffer;
  /** True when the server said 304 Not Modified and the cached copy was used. */
  notModified: boolean;
  /** Path of the cached copy. */
  path: string;
}

interface IndexMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  fetched: string;
}

/**
 * A content-addressed download cache.
 *
 * @example
 * const cache = new Cache({ dir: '/var/cache/nsbox' });
 * const hit = await cache.lookup({ algo: 'sha256', hex }, size);
 * if (!hit) { const tmp = await cache.tempPath(); …; await cache.commit(tmp, digest); }
 */
export class Cache {
  readonly dir: string;
  #made = new Set<string>();

  constructor(opts: { dir?: string } = {}) {
    this.dir = opts.dir ?? DEFAULT_CACHE_DIR;
  }

  /** Where the file with this digest lives (whether present or not). */
  pathFor(d: Digest): string {
    return join(this.dir, `by-${d.algo}`, d.hex.slice(0, 2), d.hex);
  }

  /**
   * The cached file's path when present (and of `size` bytes, when given).
   * Entries are verified before they are committed, so presence is enough.
   */
  async lookup(d: Digest, size?: number): Promise<string | undefined> {
    const p = this.pathFor(d);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st?.isFile() || (size !== undefined && st.size !== size)) return undefined;
    return p;
  }

  /** A fresh temp file name under `tmp/` for a download in progress. */
  async tempPath(hint = 'dl'): Promise<string> {
    const dir = join(this.dir, 'tmp');
    await this.#mkdir(dir);
    return join(dir, `${hint.replace(/[^A-Za-z0-9._+-]/g, '_').slice(0, 60)}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }

  /** Moves a verified temp file to its content address; returns the final path. */
  async commit(tmp: string, d: Digest): Promise<string> {
    const dest = this.pathFor(d);
    await this.#mkdir(join(this.dir, `by-${d.algo}`, d.hex.slice(0, 2)));
    renameSync(tmp, dest);
    return dest;
  }

  /** Removes temp files left by runs that were killed (older than `maxAgeMs`, default 1 day). */
  async sweepTemp(maxAgeMs = 86_400_000): Promise<number> {
    const dir = join(this.dir, 'tmp');
    let removed = 0;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return 0;
    }
    const now = Date.now();
    for (const n of names) {
      const p = join(dir, n);
      try {
        const st = await stat(p);
        if (now - st.mtimeMs > maxAgeMs) {
          await rm(p, { force: true });
          removed++;
        }
      } catch {
        /* raced with another run */
      }
    }
    return removed;
  }

  /**
   * Fetches an index file through the per-URL cache with a conditional
   * request (If-None-Match / If-Modified-Since). The cached copy is used only
   * when the server answers 304; a network failure is an error, never a
   * silent fallback to an old index.
   *
   * @example
   * const { data } = await cache.fetchIndex(http, `${mirror}/dists/trixie/InRelease`);
   */
  async fetchIndex(http: HttpClient, url: string, opts: RequestOptions = {}): Promise<IndexResult> {
    const key = createHash('sha256').update(url).digest('hex');
    const dir = join(this.dir, 'by-url');
    const path = join(dir, key);
    const metaPath = `${path}.json`;
    let meta: IndexMeta | undefined;
    try {
      meta = JSON.parse(await readFile(metaPath, 'utf8')) as IndexMeta;
      if (meta.url !== url) meta = undefined;
      else await stat(path);
    } catch {
      meta = undefined;
    }
    const headers: Record<string, string> = { ...opts.headers };
    if (meta?.etag) headers['if-none-match'] = meta.etag;
    if (meta?.lastModified) headers['if-modified-since'] = meta.lastModified;
    const res = await http.get(url, { ...opts, headers });
    if (res.status === 304 && meta) return { data: await readFile(path), notModified: true, path };
    if (res.status !== 200) throw new NsboxError(`cannot download \`${url}\`: unexpected HTTP ${res.status}`);
    await this.#mkdir(dir);
    const tmp = await this.tempPath('index');
    await writeFile(tmp, res.body);
    await rename(tmp, path);
    const next: IndexMeta = { url, etag: res.headers.etag, lastModified: res.headers['last-modified'], fetched: new Date().toISOString() };
    const tmpMeta = await this.tempPath('index-meta');
    await writeFile(tmpMeta, JSON.stringify(next));
    await rename(tmpMeta, metaPath);
    return { data: res.body, notModified: false, path };
  }

  // Synchronous like lookup and commit: these metadata calls take microseconds, while a
  // thread-pool round trip waits a whole event-loop turn (10–20 ms while downloads and
  // unpacking keep the loop busy), several times per downloaded file.
  async #mkdir(dir: string): Promise<void> {
    if (this.#made.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.#made.add(dir);
  }
}
