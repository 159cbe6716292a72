/**
 * One suite of an apt repository, fetched and trusted: InRelease (or
 * Release + Release.gpg) through the per-URL cache, then each Packages
 * index through the content-addressed cache by its signed SHA256, read into
 * a Universe. A warm cache costs one conditional request per suite.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { NsboxError, VerifyError } from '../../errors.js';
import type { Cache } from '../cache.js';
import { downloadToCache } from '../fetch.js';
import type { HttpClient } from '../http.js';
import type { Keyring } from '../pgp.js';
import { readPackagesIndex, type ReadIndexOptions } from './packages-index.js';
import { trustRelease, type TrustedRelease } from './inrelease.js';
import { packagesIndexes, type IndexChoice } from './release.js';
import type { Universe } from './universe.js';
import { archiveUrl } from './url.js';

/** What to load. */
export interface SuiteRequest {
  /** Archive root, e.g. `http://mirror.example/debian` (no trailing slash). */
  base: string;
  suite: string;
  components: string[];
  keyring?: Keyring;
  noVerify?: boolean;
  ignoreValidUntil?: boolean;
  now?: Date;
  signal?: AbortSignal;
}

/** A loaded suite. */
export interface LoadedSuite {
  trusted: TrustedRelease;
  /** Packages read from its indexes. */
  packages: number;
  /** Index files that came from the network (0 with a warm cache). */
  downloaded: number;
}

/**
 * Fetches, verifies and reads a suite into `universe`.
 *
 * @example
 * const u = new Universe('amd64');
 * await loadSuite(http, cache, { base: mirror, suite: 'trixie', components: ['main'], keyring }, u);
 * await loadSuite(http, cache, { base: security, suite: 'trixie-security', components: ['main'], keyring }, u);
 */
export async function loadSuite(http: HttpClient, cache: Cache, req: SuiteRequest, universe: Universe): Promise<LoadedSuite> {
  const dists = archiveUrl(req.base, `dists/${req.suite}`);
  let trusted: TrustedRelease;
  const common = { suite: req.suite, keyring: req.keyring, noVerify: req.noVerify, ignoreValidUntil: req.ignoreValidUntil, now: req.now };
  try {
    const { data } = await cache.fetchIndex(http, `${dists}/InRelease`, { signal: req.signal });
    trusted = await trustRelease({ inRelease: data.toString('utf8') }, { ...common, what: `${dists}/InRelease` });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    // Old or third-party archives only have Release + Release.gpg.
    const release = (await cache.fetchIndex(http, `${dists}/Release`, { signal: req.signal })).data;
    const releaseGpg = req.noVerify ? Buffer.alloc(0) : (await cache.fetchIndex(http, `${dists}/Release.gpg`, { signal: req.signal })).data;
    trusted = await trustRelease({ release, releaseGpg }, { ...common, what: `${dists}/Release` });
  }
  let packages = 0;
  let downloaded = 0;
  for (const choice of packagesIndexes(trusted.release, req.suite, req.components, universe.arch)) {
    const where = `${dists}/${choice.path}`;
    // A decompressed copy from an earlier run (verified against Release's uncompressed entry) skips xz.
    const plain = choice.uncompressed && (await cache.lookup({ algo: 'sha256', hex: choice.uncompressed.sha256 }, choice.uncompressed.size));
    if (plain) {
      const plainChoice = { ...choice, ...choice.uncompressed!, compression: 'none' as const, uncompressed: undefined };
      try {
        packages += await readPackagesIndex(createReadStream(plain), plainChoice, universe, req.suite, where.replace(/\.\w+$/, ''));
        continue;
      } catch (err) {
        // a copy that does not match Release after all (a damaged cache): read the compressed index instead
        if (!(err instanceof VerifyError)) throw err;
        await rm(plain, { force: true });
      }
    }
    const digest = { algo: 'sha256' as const, hex: choice.sha256 };
    const path = await cache.lookup(digest, choice.size);
    // Checked again while reading: the cache is trusted only as far as the digest goes.
    const tmpPlain = choice.uncompressed ? await cache.tempPath('Packages-plain') : undefined;
    let plainOk = false;
    const readOpts = { savePlainTo: tmpPlain, onPlainSaved: (ok: boolean) => (plainOk = ok) };
    try {
      if (path) {
        packages += await readPackagesIndex(createReadStream(path), choice, universe, req.suite, where, readOpts);
      } else {
        packages += await downloadAndRead(http, cache, `${dists}/${choice.fetchPath}`, choice, universe, req, where, readOpts);
        downloaded++;
      }
      if (tmpPlain && plainOk) await cache.commit(tmpPlain, { algo: 'sha256', hex: choice.uncompressed!.sha256 });
    } finally {
      if (tmpPlain) await rm(tmpPlain, { force: true });
    }
  }
  return { trusted, packages, downloaded };
}

function isNotFound(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : '';
  return /\b404\b|not found/i.test(msg) && !(err instanceof VerifyError) && (err instanceof NsboxError || err instanceof Error);
}

/**
 * Downloads an index into the cache and reads it *while* it arrives:
 * decompressing and parsing a full suite's Packages (seconds of xz) starts
 * with the first bytes instead of after the last. The reader commits to the
 * universe only once the whole stream matched Release's digest; a transfer
 * the server restarts from byte 0 is read again from the cached file.
 */
async function downloadAndRead(
  http: HttpClient, cache: Cache, url: string, choice: IndexChoice, universe: Universe, req: SuiteRequest, where: string, readOpts: ReadIndexOptions,
): Promise<number> {
  const live = new PassThrough({ highWaterMark: 1 << 20 });
  let restarted = false;
  const reading = readPackagesIndex(live, choice, universe, req.suite, where, readOpts);
  reading.catch(() => {}); // awaited below, or replaced after a restart
  let path: string;
  try {
    const r = await downloadToCache(http, cache, url, { algo: 'sha256', hex: choice.sha256 }, {
      name: 'Packages',
      signal: req.signal,
      onChunk: (c) => {
        if (!restarted) live.write(c);
      },
      onReset: () => {
        if (!restarted) live.destroy(new Error('the server restarted the transfer'));
        restarted = true;
      },
    });
    if (!('path' in r)) throw new VerifyError(`cannot verify \`${url}\`: SHA256 ${r.actual}, expected ${choice.sha256}`, { hint: 'the mirror may be syncing; retry later or use another --mirror' });
    path = r.path;
  } catch (err) {
    live.destroy(err as Error);
    throw err;
  }
  // after a restart the first reader may still hold the decompressed copy's file: no copy this time
  if (restarted) return readPackagesIndex(createReadStream(path), choice, universe, req.suite, where);
  live.end();
  return reading;
}
