/**
 * The stage cache: the tree as it stands after a deterministic first stage
 * (Debian: the essential set extracted and installed by the tree's dpkg),
 * kept as a tar.zst in the download cache under `stages/`, keyed by
 * everything that stage depends on (the exact package files, their order,
 * the engine's stage version). A rerun with the same packages restores it
 * instead of running the stage again: the slow, fork-heavy part of a
 * bootstrap becomes one archive extraction.
 *
 * Why this is safe to reuse: the essential stage installs only Essential:
 * yes packages and what they depend on; mmdebstrap's test suite checks that
 * such trees are bit-for-bit reproducible, so the stage is a pure function
 * of its inputs (no host keys, no random seeds: those come from later
 * packages, which are installed on every run).
 *
 * Saving costs little wall time: everything outside `/usr` is listed and
 * read before the next stage starts; `/usr` (nearly all the bytes) is listed
 * and read while the next stage runs. The next stage only adds to `/usr` in
 * practice: entries born after the snapshot began are left out, and a file
 * changed since then (its ctime), or while it is read (inode, ctime, size),
 * drops the snapshot — it is never stored half-right. (Directories are
 * taken as found: their times change when entries are added.)
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Header } from 'tar-stream';

type Headers = Partial<Header> & { name: string };
import type { Cache } from './cache.js';
import { decompressStream } from './decompress.js';
import { extractTar } from './archive/tar.js';

/** Bump when what goes into a stage changes in a way its key does not show. */
export const STAGE_FORMAT = 1;
/** Stages kept per cache (the least recently used go first). */
const KEEP = 4;

/** Key of a stage from the parts it depends on. */
export function stageKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify({ format: STAGE_FORMAT, parts })).digest('hex');
}

const dirOf = (cache: Cache) => join(cache.dir, 'stages');

/** Forgets a stage (it turned out unreadable). */
export async function dropStage(cache: Cache, key: string): Promise<void> {
  const base = join(dirOf(cache), key);
  await rm(`${base}.json`, { force: true });
  await rm(`${base}.tar.zst`, { force: true });
}

/**
 * Restores a cached stage into `dir` (which holds nothing else yet).
 * Returns its metadata, or undefined when there is none. A damaged archive
 * (zstd's checksum, tar's structure) throws; the caller drops it and runs
 * the stage instead.
 *
 * @example
 * const meta = await restoreStage(cache, key, '/srv/t');
 * if (!meta) await runEssentialStage();
 */
export async function restoreStage<M>(cache: Cache, key: string, dir: string): Promise<M | undefined> {
  const base = join(dirOf(cache), key);
  let meta: M;
  try {
    meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as M;
    await stat(`${base}.tar.zst`);
  } catch {
    return undefined;
  }
  await extractTar(await decompressStream(createReadStream(`${base}.tar.zst`, { highWaterMark: 1 << 20 }), 'zstd'), dir);
  const now = new Date();
  await import('node:fs/promises').then((fs) => fs.utimes(`${base}.json`, now, now)).catch(() => {});
  return meta;
}

interface Item {
  rel: string;
  st: import('node:fs').BigIntStats;
}

/** A snapshot being taken; see beginSnapshot. */
export interface Snapshot {
  /** Reads the rest, checks it, stores the stage. Resolves false when the tree changed underneath (nothing stored). */
  finish(): Promise<boolean>;
  /** Drops the snapshot (the run failed). */
  abort(): Promise<void>;
}

/**
 * Starts a snapshot of `dir` as it is now. Before it resolves, the whole
 * tree is listed and every file outside `liveRoots` is read; the caller may
 * then let the next stage run while `finish()` reads the files under
 * `liveRoots`. `exclude` are tree-relative paths left out (with what is
 * below them).
 *
 * @example
 * const snap = await beginSnapshot(cache, key, dir, { meta, liveRoots: ['usr'], exclude: ['var/log/nsbox-bootstrap.log'] });
 * await Promise.all([runNextStage(), snap.finish()]);
 */
export async function beginSnapshot(
  cache: Cache,
  key: string,
  dir: string,
  opts: { meta: unknown; liveRoots?: string[]; exclude?: string[] },
): Promise<Snapshot> {
  const live = (opts.liveRoots ?? []).map((r) => r.replace(/^\/+|\/+$/g, ''));
  const exclude = new Set((opts.exclude ?? []).map((r) => r.replace(/^\/+|\/+$/g, '')));
  const isLiveRoot = (rel: string) => live.includes(rel);
  // Nothing created from now on belongs to the stage: entries under the live roots born later are skipped.
  const since = await fsClock(dir);
  const list = async (rel: string, out: Item[], bornBefore?: bigint): Promise<void> => {
    const names = (await readdir(rel ? join(dir, rel) : dir)).sort();
    const sts = await Promise.all(names.map((n) => lstat(join(dir, rel, n), { bigint: true }).catch(() => undefined)));
    for (let i = 0; i < names.length; i++) {
      const r = rel ? `${rel}/${names[i]}` : names[i];
      const st = sts[i];
      if (exclude.has(r) || !st) continue;
      if (bornBefore !== undefined && st.birthtimeNs > bornBefore) continue;
      out.push({ rel: r, st });
      // Live roots are listed later (finish), while the next stage runs.
      if (st.isDirectory() && (bornBefore !== undefined || !isLiveRoot(r))) await list(r, out, bornBefore);
    }
  };
  const items: Item[] = [];
  await list('', items);
  // Without birth times (old kernels, some file systems) the live roots are listed now too.
  const probe = items.find((it) => isLiveRoot(it.rel));
  const deferList = probe !== undefined && probe.st.birthtimeNs > 0n;
  if (!deferList) for (const it of items.filter((x) => isLiveRoot(x.rel) && x.st.isDirectory())) await list(it.rel, items, undefined);
  const isLive = (rel: string) => live.some((l) => rel.startsWith(`${l}/`));
  // What tar-stream cannot carry exactly makes the tree uncacheable: devices, sockets, FIFOs,
  // mode 0000 (it writes a default mode instead), extended attributes.
  const hasXattrs = await xattrProbe();
  const carriable = (it: Item) =>
    !!hasXattrs && (it.st.isFile() || it.st.isDirectory() || it.st.isSymbolicLink()) && (it.st.isSymbolicLink() || (it.st.mode & 0o7777n) !== 0n) && !hasXattrs(join(dir, it.rel));
  const cacheable = items.every(carriable);

  await mkdir(dirOf(cache), { recursive: true });
  const tmp = await cache.tempPath(`stage-${key.slice(0, 12)}`);
  const tar = tarPack();
  const { CompressStream } = await import('zstd-napi');
  const written = pipeline(tar, new CompressStream({ compressionLevel: 1, checksumFlag: true, nbWorkers: 1 }), createWriteStream(tmp));
  written.catch(() => {});
  const firstPath = new Map<string, string>();
  let changed = !cacheable;

  const add = async (it: Item, check: boolean): Promise<void> => {
    const abs = join(dir, it.rel);
    const h: Headers = {
      name: it.st.isDirectory() ? `${it.rel}/` : it.rel,
      mode: Number(it.st.mode & 0o7777n),
      uid: Number(it.st.uid),
      gid: Number(it.st.gid),
      mtime: new Date(Number(it.st.mtimeMs)),
    };
    if (it.st.isDirectory()) return entry(tar, { ...h, type: 'directory' });
    if (it.st.isSymbolicLink()) {
      const target = await readlink(abs);
      if (check && !(await same(abs, it.st))) changed = true;
      return entry(tar, { ...h, type: 'symlink', linkname: target });
    }
    if (it.st.nlink > 1n) {
      const id = `${it.st.dev}:${it.st.ino}`;
      const first = firstPath.get(id);
      if (first) return entry(tar, { ...h, type: 'link', linkname: first });
      firstPath.set(id, it.rel);
    }
    const data = await readFile(abs);
    if (check && !(await same(abs, it.st))) changed = true;
    return entry(tar, { ...h, type: 'file', size: data.length }, data);
  };

  // The parts outside the live roots, now (the next stage rewrites /etc and /var at once).
  if (!changed) for (const it of items) if (!isLive(it.rel)) await add(it, false);

  let settled = false;
  const drop = async () => {
    settled = true;
    tar.destroy();
    await written.catch(() => {});
    await rm(tmp, { force: true });
  };
  return {
    async finish() {
      if (settled) return false;
      try {
        if (!changed) {
          const liveItems = items.filter((it) => isLive(it.rel));
          if (deferList) for (const it of items.filter((x) => isLiveRoot(x.rel) && x.st.isDirectory())) await list(it.rel, liveItems, since);
          for (const it of liveItems) {
            // A file changed since the snapshot began is not the stage's any more (directories change as entries are added).
            if (!carriable(it) || (!it.st.isDirectory() && it.st.ctimeNs > since)) changed = true;
            if (changed) break;
            await add(it, true);
          }
        }
        if (changed) {
          await drop();
          return false;
        }
        tar.finalize();
        await written;
        settled = true;
        const base = join(dirOf(cache), key);
        await writeFile(`${base}.json.tmp`, JSON.stringify(opts.meta));
        await rename(tmp, `${base}.tar.zst`);
        await rename(`${base}.json.tmp`, `${base}.json`);
        await prune(cache);
        return true;
      } catch {
        await drop();
        return false;
      }
    },
    abort: drop,
  };
}

/** A synchronous "has extended attributes" check (llistxattr through koffi), or undefined when unavailable. */
async function xattrProbe(): Promise<((path: string) => boolean) | undefined> {
  try {
    const m = await import('koffi');
    const koffi = (m as unknown as { default?: typeof import('koffi') }).default ?? (m as unknown as typeof import('koffi'));
    const llistxattr = koffi.load('libc.so.6').func('long llistxattr(const char *path, void *list, size_t size)') as (p: string, l: null, n: number) => number;
    return (path) => llistxattr(path, null, 0) !== 0;
  } catch {
    return undefined;
  }
}

/**
 * "Now" on the tree's own file system clock, which is coarse (one kernel tick):
 * no entry made before the call is stamped later than the value returned, and
 * the call returns only once the clock has moved on, so every entry made after
 * it is stamped later. (Date.now() is finer than the stamps and not comparable:
 * a file made just before it could look born after.)
 */
async function fsClock(dir: string): Promise<bigint> {
  let n = 0;
  const stamp = async () => {
    const probe = join(dir, `.nsbox-clock-${process.pid}-${n++}`);
    await writeFile(probe, '');
    try { return (await lstat(probe, { bigint: true })).ctimeNs; } finally { await unlink(probe); }
  };
  let t: bigint;
  try { t = await stamp(); } catch { return BigInt(Date.now()) * 1_000_000n; }
  for (let i = 0; i < 1000; i++) {
    if ((await stamp()) > t) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  return t;
}

/** Whether a path still is what the listing saw (same inode, same change time). */
async function same(abs: string, st: import('node:fs').BigIntStats): Promise<boolean> {
  try {
    const now = await lstat(abs, { bigint: true });
    return now.ino === st.ino && now.ctimeNs === st.ctimeNs && now.size === st.size;
  } catch {
    return false;
  }
}

function entry(tar: ReturnType<typeof tarPack>, h: Headers, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (data) tar.entry(h, data, done);
    else tar.entry(h, done);
  });
}

/** Keeps the KEEP most recently used stages. */
async function prune(cache: Cache): Promise<void> {
  const d = dirOf(cache);
  const metas = (await readdir(d)).filter((n) => n.endsWith('.json'));
  await removeOldest(d, metas, KEEP, async (n) => {
    const base = join(d, n.replace(/\.json$/, ''));
    await rm(`${base}.json`, { force: true });
    await rm(`${base}.tar.zst`, { force: true });
  });
}

/**
 * Keeps the `keep` most recently used of `names` in `dir` (by mtime: a
 * reuse touches it) and hands the others to `remove`. Shared by the cached
 * stages here and rpm's cached runtimes (bootstrap/rpm/runtime-cache.ts).
 */
export async function removeOldest(dir: string, names: string[], keep: number, remove: (name: string) => Promise<void>): Promise<void> {
  if (names.length <= keep) return;
  const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
  aged.sort((a, b) => b.t - a.t);
  for (const { n } of aged.slice(keep)) await remove(n);
}
