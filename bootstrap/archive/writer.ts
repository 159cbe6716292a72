/**
 * Writes archive entries (from tar or cpio) into a tree, safely and fast.
 *
 * Safety: every entry path is split into components; `..` is refused, and
 * each parent component is resolved *inside the tree root* (like openat2's
 * RESOLVE_IN_ROOT): a symlink met on the way is followed with its target
 * re-rooted at the tree (absolute targets start at the root, `..` stops at
 * the root). So `bin -> usr/bin` in a merged-/usr tree is written through,
 * the way dpkg does, and `etc -> /etc` can never reach the host's /etc. The
 * final component is never followed (a symlink there is replaced), except
 * for a directory entry landing on a symlink to a directory, which keeps the
 * symlink (dpkg's behaviour, which merged /usr relies on).
 *
 * Speed: parents are resolved once and cached, and every file-system call
 * is a synchronous one. A package is thousands of small entries, each a
 * handful of system calls (open, write, fchown, fchmod, futimes, close);
 * through node's thread pool each call costs a round trip that dwarfs the
 * call itself (measured: a Fedora filesystem package, mostly directories,
 * took 69 ms that way). Contents still arrive as a stream, so a big file is
 * written chunk by chunk as it is decompressed.
 */
import {
  constants as C, readFileSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, rmdirSync, symlinkSync, unlinkSync, linkSync,
  lutimesSync, lchownSync, utimesSync, chmodSync, chownSync, fchownSync, fchmodSync, futimesSync, closeSync, rmSync, type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { NsboxError, VerifyError } from '../../errors.js';
import { writeAll } from '../write-all.js';
import { mknod, setXattr, S_IFBLK, S_IFCHR, S_IFIFO } from './native.js';

export type EntryKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One archive member, format-neutral. */
export interface TreeEntry {
  /** Path as the archive has it (`./usr/bin/x`, `usr/bin/x` or `/usr/bin/x`). */
  path: string;
  kind: EntryKind;
  /** Permission bits including setuid/setgid/sticky (file type bits are ignored). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Symlink: the target, kept verbatim. Hard link: the archive path of the existing entry. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** Extended attributes, e.g. `security.capability`. */
  xattrs?: Record<string, Buffer>;
}

/** File contents: a buffer, or a stream of chunks that must be consumed. */
export type EntryData = Buffer | AsyncIterable<Buffer>;

export interface WriterOptions {
  /** Apply numeric owners (default: when running as root). */
  owners?: boolean;
}

const UMASK = readUmask();
const IS_ROOT = process.getuid?.() === 0;

/**
 * Splits an archive path into safe components; throws on `..` and NUL.
 *
 * @example
 * entryComponents('./usr/bin/ls') // ['usr', 'bin', 'ls']
 * entryComponents('../etc/passwd') // throws VerifyError
 */
export function entryComponents(path: string): string[] {
  if (path.includes('\0')) throw unsafe(path, 'contains a NUL byte');
  const parts = path.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw unsafe(path, 'leaves the tree');
  return parts;
}

function unsafe(path: string, why: string): VerifyError {
  return new VerifyError(`cannot extract \`${path}\`: path ${why}`, { hint: 'the package is malformed or malicious; it was not unpacked' });
}

/**
 * Writes entries into `root`; see the module comment.
 *
 * @example
 * const w = new TreeWriter('/srv/tree');
 * await w.add({ path: './usr/bin/hello', kind: 'file', mode: 0o755, uid: 0, gid: 0, mtime: 1700000000 }, data);
 * const written = await w.finish(); // ['/usr', '/usr/bin', '/usr/bin/hello'] minus implicit parents
 */
export class TreeWriter {
  readonly root: string;
  readonly #owners: boolean;
  /** unresolved parent path ('usr/bin' or 'bin') → resolved path relative to root ('usr/bin'). */
  #dirs = new Map<string, string>();
  /** Resolved directories with the setgid bit: new entries inherit their group, so chown them always. */
  #sgid = new Set<string>();
  #dirTimes: Array<[string, number, number | undefined]> = [];
  #written: string[] = [];

  constructor(root: string, opts: WriterOptions = {}) {
    this.root = root.replace(/\/+$/, '') || '/';
    this.#owners = opts.owners ?? IS_ROOT;
    this.#dirs.set('', '');
  }

  /** Archive paths written so far, as dpkg lists them (`/.`, `/usr`, `/usr/bin/x`). */
  get written(): readonly string[] {
    return this.#written;
  }

  /**
   * Writes one entry. For a file, `data` must be given and is consumed
   * (and written) before add() returns.
   */
  async add(entry: TreeEntry, data?: EntryData): Promise<void> {
    const parts = entryComponents(entry.path);
    const listed = parts.length === 0 ? '/.' : `/${parts.join('/')}`;
    if (parts.length === 0) {
      if (entry.kind !== 'directory') throw unsafe(entry.path, 'names the tree root');
      await drain(data);
      this.#written.push(listed);
      return;
    }
    const name = parts[parts.length - 1];
    try {
      const parent = this.#resolveDir(parts.slice(0, -1));
      const rel = parent ? `${parent}/${name}` : name;
      const abs = this.#abs(rel);
      const sgid = this.#sgid.has(parent);
      switch (entry.kind) {
        case 'directory':
          await drain(data);
          this.#directory(parts.join('/'), rel, abs, entry, sgid);
          if (entry.xattrs) for (const [k, v] of Object.entries(entry.xattrs)) await setXattr(abs, k, v);
          break;
        case 'file':
          await this.#file(abs, entry, data, sgid);
          break;
        case 'symlink':
          await drain(data);
          if (entry.linkTarget === undefined) throw new NsboxError(`cannot extract \`${entry.path}\`: symlink without target`);
          this.#replace(abs, () => symlinkSync(entry.linkTarget!, abs));
          if (this.#owners && (entry.uid !== 0 || entry.gid !== 0 || !IS_ROOT || sgid)) lchownSync(abs, entry.uid, entry.gid);
          lutimesSync(abs, entry.mtime, entry.mtime);
          break;
        case 'hardlink': {
          await drain(data);
          const tparts = entryComponents(entry.linkTarget ?? '');
          if (tparts.length === 0) throw unsafe(entry.linkTarget ?? '', 'is not a valid hard link target');
          const tparent = this.#resolveDir(tparts.slice(0, -1));
          const trel = tparent ? `${tparent}/${tparts[tparts.length - 1]}` : tparts[tparts.length - 1];
          if (trel !== rel) this.#replace(abs, () => linkSync(this.#abs(trel), abs));
          break;
        }
        case 'char':
        case 'block':
        case 'fifo': {
          await drain(data);
          const type = entry.kind === 'char' ? S_IFCHR : entry.kind === 'block' ? S_IFBLK : S_IFIFO;
          const made = await mknod(abs, type, entry.mode & 0o777, entry.devMajor ?? 0, entry.devMinor ?? 0).then(() => true, (e: NodeJS.ErrnoException) => {
            if (e.code !== 'EEXIST') throw e;
            return false;
          });
          if (!made) {
            this.#remove(abs);
            await mknod(abs, type, entry.mode & 0o777, entry.devMajor ?? 0, entry.devMinor ?? 0);
          }
          this.#meta(abs, entry, true, sgid);
          utimesSync(abs, entry.mtime, entry.mtime);
          break;
        }
        default:
          throw new NsboxError(`cannot extract \`${entry.path}\`: unsupported entry type \`${String((entry as TreeEntry).kind)}\``);
      }
    } catch (err) {
      throw this.#wrap(entry.path, err);
    }
    this.#written.push(listed);
  }

  /**
   * Waits for background writes, then sets directory times and the modes
   * deferred while children were written (deepest first). Returns the
   * archive paths written, in archive order.
   */
  async finish(): Promise<string[]> {
    this.#dirTimes.sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [abs, mtime, mode] of this.#dirTimes) {
      if (mode !== undefined) chmodSync(abs, mode);
      utimesSync(abs, mtime, mtime);
    }
    this.#dirTimes = [];
    return [...this.#written];
  }

  /**
   * Where archive path `path` lands, relative to the root: its parents
   * resolved inside the tree as add() resolves them (missing ones are
   * created), the last component not followed unless `dir` says it is a
   * directory to enter. '' is the root.
   *
   * @example
   * w.locate('./bin/ls') // 'usr/bin/ls' in a merged-/usr tree
   */
  locate(path: string, opts: { dir?: boolean } = {}): string {
    const parts = entryComponents(path);
    if (!parts.length) return '';
    try {
      if (opts.dir) return this.#resolveDir(parts);
      const parent = this.#resolveDir(parts.slice(0, -1));
      return parent ? `${parent}/${parts[parts.length - 1]}` : parts[parts.length - 1];
    } catch (err) {
      throw this.#wrap(path, err);
    }
  }

  /**
   * Removes what is at tree-relative `rel` (from locate()), a directory with
   * everything in it, a symlink itself and never its target. For layer
   * whiteouts. Returns whether anything was there.
   */
  removeLocated(rel: string): boolean {
    if (!rel) throw new NsboxError(`cannot remove the root of \`${this.root}\``);
    const abs = this.#abs(rel);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return false;
    if (st.isDirectory()) {
      rmSync(abs, { recursive: true, force: true });
      // cached resolutions below it (and pending directory times) are stale now
      this.#dirs.clear();
      this.#dirs.set('', '');
      this.#dirTimes = this.#dirTimes.filter(([p]) => p !== abs && !p.startsWith(`${abs}/`));
      for (const s of this.#sgid) if (s === rel || s.startsWith(`${rel}/`)) this.#sgid.delete(s);
    } else {
      unlinkSync(abs);
    }
    return true;
  }

  #abs(rel: string): string {
    return rel ? (this.root === '/' ? `/${rel}` : `${this.root}/${rel}`) : this.root;
  }

  #wrap(path: string, err: unknown): Error {
    if (err instanceof NsboxError) return err;
    const e = err as NodeJS.ErrnoException;
    return new NsboxError(`cannot extract \`${path}\` into \`${this.root}\`: ${e.code ?? e.message}`, { cause: err });
  }

  /** Resolves a parent path inside the root, creating missing directories (0755). */
  #resolveDir(parts: string[]): string {
    const key = parts.join('/');
    const hit = this.#dirs.get(key);
    if (hit !== undefined) return hit;
    // Longest cached prefix, then walk the rest.
    let i = parts.length - 1;
    while (i > 0 && !this.#dirs.has(parts.slice(0, i).join('/'))) i--;
    let cur = this.#dirs.get(parts.slice(0, i).join('/'))!;
    for (; i < parts.length; i++) {
      cur = this.#walk(cur, [parts[i]], 0);
      this.#dirs.set(parts.slice(0, i + 1).join('/'), cur);
    }
    return cur;
  }

  /** Walks `parts` from resolved directory `cur`, following symlinks within the root. */
  #walk(cur: string, parts: string[], hops: number): string {
    for (const c of parts) {
      if (c === '' || c === '.') continue;
      if (c === '..') {
        cur = cur.includes('/') ? cur.slice(0, cur.lastIndexOf('/')) : '';
        continue;
      }
      const next = cur ? `${cur}/${c}` : c;
      const abs = this.#abs(next);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        try {
          mkdirSync(abs, 0o755);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        if (this.#sgid.has(cur)) this.#sgid.add(next); // mkdir in a setgid directory inherits the bit
        cur = next;
        continue;
      }
      if (st.isDirectory()) {
        if (st.mode & 0o2000) this.#sgid.add(next);
        cur = next;
      } else if (st.isSymbolicLink()) {
        if (hops >= 40) throw new NsboxError(`cannot resolve \`${next}\` in \`${this.root}\`: too many levels of symbolic links`);
        const target = readlinkSync(abs);
        cur = this.#walk(target.startsWith('/') ? '' : cur, target.split('/'), hops + 1);
      } else {
        throw new NsboxError(`cannot extract into \`${this.#abs(next)}\`: not a directory`);
      }
    }
    return cur;
  }

  #directory(key: string, rel: string, abs: string, e: TreeEntry, sgidParent: boolean): void {
    let st: Stats | undefined = lstatSync(abs, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) {
      // dpkg keeps a symlink to a directory where the package has a directory.
      const resolved = this.#walk(rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '', [rel.slice(rel.lastIndexOf('/') + 1)], 0);
      this.#dirs.set(key, resolved);
      return;
    }
    if (st && !st.isDirectory()) {
      unlinkSync(abs);
      st = undefined;
    }
    if (!st) mkdirSync(abs, 0o700);
    this.#dirs.set(key, rel);
    const perm = e.mode & 0o7777;
    if (perm & 0o2000) this.#sgid.add(rel);
    else this.#sgid.delete(rel);
    if (this.#owners && (e.uid !== 0 || e.gid !== 0 || !IS_ROOT || sgidParent || st)) chownSync(abs, e.uid, e.gid);
    // Directories without owner write/exec get their mode at finish(), after their children.
    const deferMode = !IS_ROOT && (perm & 0o300) !== 0o300;
    if (!deferMode) chmodSync(abs, perm);
    this.#dirTimes.push([abs, e.mtime, deferMode ? perm : undefined]);
  }

  async #file(abs: string, e: TreeEntry, data: EntryData | undefined, sgid: boolean): Promise<void> {
    const fd = this.#replace(abs, () => openSync(abs, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, e.mode & 0o777));
    let failure: unknown;
    try {
      if (data === undefined) { /* empty */ } else if (Buffer.isBuffer(data)) writeAll(fd, data);
      else {
        // a failed write still consumes the stream, so the archive reader can go on to report
        for await (const chunk of data) if (failure === undefined) try { writeAll(fd, chunk); } catch (err) { failure = err; }
      }
      if (failure !== undefined) throw failure;
      this.#meta(fd, e, false, sgid);
      futimesSync(fd, e.mtime, e.mtime);
    } finally {
      closeSync(fd);
    }
    if (e.xattrs) for (const [k, v] of Object.entries(e.xattrs)) await setXattr(abs, k, v);
  }

  /** Owner then mode (chown clears setuid bits), skipped when already right. */
  #meta(target: number | string, e: TreeEntry, always: boolean, sgidParent: boolean): void {
    const perm = e.mode & 0o7777;
    const chowned = this.#owners && (e.uid !== 0 || e.gid !== 0 || !IS_ROOT || sgidParent);
    if (chowned) typeof target === 'string' ? chownSync(target, e.uid, e.gid) : fchownSync(target, e.uid, e.gid);
    if (always || chowned || perm !== (perm & 0o777 & ~UMASK)) typeof target === 'string' ? chmodSync(target, perm) : fchmodSync(target, perm);
  }

  /** Runs `create`; when the path exists, removes it (an empty directory too) and tries once more. */
  #replace<T>(abs: string, create: () => T): T {
    try {
      return create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    this.#remove(abs);
    return create();
  }

  /** Removes what is in the way of a new entry (a directory only when empty). */
  #remove(abs: string): void {
    const st = lstatSync(abs);
    if (st.isDirectory()) {
      if (readdirSync(abs).length > 0) throw new NsboxError(`cannot replace directory \`${abs}\`: not empty`);
      rmdirSync(abs);
      this.#dirs.clear();
      this.#dirs.set('', '');
    } else {
      unlinkSync(abs);
    }
  }
}

/** Consumes entry data nobody writes (a streaming archive reader waits for it). */
export async function drain(data: EntryData | undefined): Promise<void> {
  if (data && !Buffer.isBuffer(data)) for await (const _ of data) void _;
}

function readUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return parseInt(m[1], 8);
  } catch {
    /* not Linux procfs */
  }
  return 0o7777; // unknown: always chmod
}

/** Joins a tree root and an archive path (no resolution), for callers' messages. */
export function treePath(root: string, archivePath: string): string {
  return join(root, ...entryComponents(archivePath));
}
