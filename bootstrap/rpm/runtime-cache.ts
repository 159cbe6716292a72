/**
 * rpm's runtime, extracted once and kept: the files the tree's own rpm needs
 * before it can install anything (bootstrap/rpm/engine.ts, step 4) are the
 * same for every bootstrap of a release until one of those packages
 * changes. They are extracted into the download cache
 * (`rpm-runtime/<key>`, the key made of the exact package files) and
 * hard-linked into each new tree, so a rerun spends no time decompressing
 * them again (mkosi keeps its tools tree for the same reason).
 *
 * Why hard links are safe here: rpm replaces every one of these files when
 * it installs their package (it writes a new file and renames it over the
 * old name; the cached inode is never written). What could still write
 * through a link — a scriptlet appending to a file of a package installed
 * later in the same transaction — is detected afterwards (the cached file's
 * size or mtime changed) and the cached runtime is dropped; links rpm did
 * not replace are turned into copies, so the finished tree shares no inode
 * with the cache.
 *
 * A cache on another file system than the tree (EXDEV) makes the caller
 * extract into the tree as before.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, lchownSync, lstatSync, lutimesSync, linkSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, type Stats } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cache } from '../cache.js';
import { removeOldest, stageKey } from '../stage-cache.js';

/** Runtimes kept per cache (the least recently used go first). */
const KEEP = 4;
const dirOf = (cache: Cache) => join(cache.dir, 'rpm-runtime');

/** A file linked into a tree, as the cache had it. */
interface LinkedFile {
  rel: string;
  ino: number;
  size: number;
  mtimeMs: number;
}

/** What linkRuntime put into a tree (for releaseRuntime). */
export interface LinkedRuntime {
  source: string;
  files: LinkedFile[];
}

/**
 * The key of a runtime: its packages, exactly (name, version, checksum of
 * the file), and the version of the rule that chose its files from them
 * (runtime.ts; 3: whole packages, where 2 took the files rpm was seen to
 * open), so a runtime made by another rule is never reused.
 */
export function runtimeKey(arch: string, packages: Array<{ nevra: string; sha256: string }>): string {
  return stageKey({ stage: 'fedora-rpm-runtime-3', arch, packages: packages.map((p) => [p.nevra, p.sha256]) });
}

/** The cached runtime's directory, or undefined when there is none. */
export function findRuntime(cache: Cache, key: string): string | undefined {
  const dir = join(dirOf(cache), key);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return undefined;
  const now = new Date();
  try {
    utimesSync(dir, now, now); // recently used
  } catch {
    /* a read-only cache still serves */
  }
  return dir;
}

/**
 * A directory to extract a new runtime into, and `commit` to publish it
 * under its key (atomically: a runtime directory exists only complete).
 * Undefined when the cache cannot be written. Synchronous calls: this runs
 * while downloads keep the event loop busy, where each thread-pool round
 * trip would wait a whole turn of it.
 */
export function newRuntime(cache: Cache, key: string): { dir: string; commit(): string; discard(): Promise<void>; prune(): Promise<void> } | undefined {
  const base = dirOf(cache);
  const dir = join(base, `.${key}.${process.pid}.tmp`);
  try {
    mkdirSync(base, { recursive: true, mode: 0o700 });
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o755 });
  } catch {
    return undefined;
  }
  return {
    dir,
    commit: () => {
      const final = join(base, key);
      try {
        renameSync(dir, final);
      } catch {
        rmSync(dir, { recursive: true, force: true }); // another bootstrap published it first
      }
      return final;
    },
    discard: () => rm(dir, { recursive: true, force: true }),
    prune: () => prune(base, key),
  };
}

/**
 * Recreates the runtime's tree in `dest` (which has nothing of it yet):
 * directories and symlinks made anew with their owners, modes and times,
 * files hard-linked. Throws (EXDEV, EPERM…) when links cannot be made; the
 * caller then removes what was made and extracts instead.
 *
 * @example
 * const linked = linkRuntime(runtimeDir, '/srv/f40');
 */
export function linkRuntime(source: string, dest: string): LinkedRuntime {
  const files: LinkedFile[] = [];
  const dirTimes: Array<[string, Stats]> = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(source, rel) : source).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const from = join(source, r);
      const to = join(dest, r);
      const st = lstatSync(from);
      if (st.isDirectory()) {
        const existing = lstatSync(to, { throwIfNoEntry: false });
        if (!existing) mkdirSync(to, st.mode & 0o7777);
        else if (!existing.isDirectory()) throw Object.assign(new Error(`\`${to}\` is in the way`), { code: 'EEXIST' });
        lchownSync(to, st.uid, st.gid);
        chmodSync(to, st.mode & 0o7777);
        walk(r);
        dirTimes.push([to, st]);
      } else if (st.isSymbolicLink()) {
        symlinkSync(readlinkSync(from), to);
        lchownSync(to, st.uid, st.gid);
        lutimesSync(to, st.atime, st.mtime);
      } else {
        linkSync(from, to);
        files.push({ rel: r, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
  };
  walk('');
  for (const [to, st] of dirTimes) utimesSync(to, st.atime, st.mtime);
  return { source, files };
}

/**
 * After rpm ran: every file still linked to the cache becomes a copy of its
 * own, and a cached file written through a link makes the runtime dropped.
 * Returns whether the cached runtime is still intact.
 */
export async function releaseRuntime(linked: LinkedRuntime, dest: string): Promise<boolean> {
  let intact = true;
  for (const f of linked.files) {
    const cached = lstatSync(join(linked.source, f.rel), { throwIfNoEntry: false });
    if (!cached || cached.ino !== f.ino || cached.size !== f.size || cached.mtimeMs !== f.mtimeMs) intact = false;
    const mine = lstatSync(join(dest, f.rel), { throwIfNoEntry: false });
    if (mine && mine.ino === f.ino && mine.dev === cached?.dev) unshare(join(dest, f.rel));
  }
  if (!intact) await rm(linked.source, { recursive: true, force: true });
  return intact;
}

/**
 * Replaces a hard link by a copy with everything of the file (owner, mode,
 * times, extended attributes such as file capabilities: `cp -a`). Rare:
 * rpm replaces these files itself.
 */
function unshare(path: string): void {
  const tmp = `${path}.nsbox-unshare`;
  execFileSync('cp', ['-a', '--', path, tmp], { stdio: 'ignore' });
  renameSync(tmp, path);
}

/** Keeps the KEEP most recently used runtimes (and never `current`). */
async function prune(base: string, current: string): Promise<void> {
  const names = (await readdir(base).catch(() => [] as string[])).filter((n) => !n.startsWith('.') && n !== current);
  await removeOldest(base, names, KEEP - 1, (n) => rm(join(base, n), { recursive: true, force: true }));
}
