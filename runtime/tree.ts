/**
 * Reading a distribution tree from the host: paths are resolved inside the
 * tree (an absolute symlink in the tree points into the tree, never at the
 * host), the way the container itself will see them.
 */
import { lstatSync, readlinkSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { NsboxError } from '../errors.js';

/**
 * The host path of `path` inside the tree at `root`, following symbolic
 * links the way a chroot would. `followLast: false` leaves a link in the
 * last component unresolved (to replace the link itself).
 *
 * @example
 * resolveInTree('/srv/t', '/etc/resolv.conf') // '/srv/t/run/systemd/resolve/stub-resolv.conf' when that is the link
 */
export function resolveInTree(root: string, path: string, opts: { followLast?: boolean } = {}): string {
  const follow = opts.followLast ?? true;
  let todo = posix.normalize(`/${path}`).split('/').filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === '.') continue;
    if (part === '..') { done.pop(); continue; }
    const host = join(root, ...done, part);
    let link: string | undefined;
    if (todo.length || follow) {
      try {
        if (lstatSync(host).isSymbolicLink()) link = readlinkSync(host);
      } catch { /* missing: the rest is created as named */ }
    }
    if (link === undefined) { done.push(part); continue; }
    if (++hops > 40) throw new NsboxError(`cannot resolve \`${path}\` in the tree: too many levels of symbolic links`);
    const target = link.split('/').filter(Boolean);
    if (link.startsWith('/')) done.length = 0;
    todo = [...target, ...todo];
  }
  return join(root, ...done);
}

/** Reads a file of the tree, or undefined when it does not exist. */
export function readTreeFile(root: string, path: string): string | undefined {
  try {
    return readFileSync(resolveInTree(root, path), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Whether `path` inside the tree is an executable regular file. */
export function isExecutableInTree(root: string, path: string): boolean {
  const host = resolveInTree(root, path);
  if (!host) return false;
  try {
    const st = statSync(host);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch { return false; }
}

export interface PasswdEntry { name: string; uid: number; gid: number; home: string; shell: string }

/** Looks a user up by name or numeric uid in the tree's /etc/passwd. */
export function lookupUser(root: string, user: string): PasswdEntry | undefined {
  const text = readTreeFile(root, '/etc/passwd') ?? '';
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7) continue;
    const e = { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/', shell: f[6] };
    if (e.name === user || (/^\d+$/.test(user) && e.uid === Number(user))) return e;
  }
  return undefined;
}

/** Supplementary group ids of `name` from the tree's /etc/group. */
export function supplementaryGroups(root: string, name: string): number[] {
  const text = readTreeFile(root, '/etc/group') ?? '';
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4) continue;
    if (f[3].split(',').includes(name)) out.push(Number(f[2]));
  }
  return out;
}

/** The numeric gid of a group in the tree, or a fallback. */
export function groupId(root: string, group: string, fallback: number): number {
  const text = readTreeFile(root, '/etc/group') ?? '';
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === group && /^\d+$/.test(f[2] ?? '')) return Number(f[2]);
  }
  return fallback;
}

/** Init candidates in systemd-nspawn's order. */
export const INIT_PATHS = ['/usr/lib/systemd/systemd', '/lib/systemd/systemd', '/sbin/init'];

/** The tree's init, or undefined. */
export function findInit(root: string): string | undefined {
  return INIT_PATHS.find((p) => isExecutableInTree(root, p));
}

/** Whether the tree's init is systemd (socket activation and sd_notify need it). */
export function initIsSystemd(root: string, init: string): boolean {
  const host = resolveInTree(root, init);
  return !!host && /\/systemd$/.test(host);
}

/** A 32-hex-digit machine id from the tree's /etc/machine-id, if set. */
export function treeMachineId(root: string): string | undefined {
  const id = readTreeFile(root, '/etc/machine-id')?.trim();
  return id && /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/** How the tree's /etc/resolv.conf looks, to decide how to provide name resolution. */
export function resolvConfKind(root: string): { kind: 'file' | 'missing' | 'link'; target?: string } {
  const host = join(root, 'etc/resolv.conf');
  let st;
  try { st = lstatSync(host); } catch { return { kind: 'missing' }; }
  if (st.isSymbolicLink()) {
    let target = readlinkSync(host);
    if (!target.startsWith('/')) target = join('/etc', target);
    return { kind: 'link', target };
  }
  return { kind: st.isFile() ? 'file' : 'missing' };
}
