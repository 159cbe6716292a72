/**
 * File access inside a tree from the host, as the tree sees its own files:
 * symbolic links are followed relative to the tree's root (an absolute link
 * such as `/etc/hostname -> /run/hostname` stays inside the tree), so a
 * post step never writes through a link onto the host. Users and groups
 * are looked up in the tree's /etc/passwd and /etc/group, not the host's.
 */
import { chmodSync, chownSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { NsboxError } from '../errors.js';

export { resolveInTree, readTreeFile } from '../runtime/tree.js';
import { resolveInTree, readTreeFile } from '../runtime/tree.js';

/** Creates the directories of `path` (0755, root) inside the tree. */
export function mkdirInTree(root: string, path: string, mode = 0o755): string {
  const host = resolveInTree(root, path);
  mkdirSync(host, { recursive: true, mode });
  return host;
}

/**
 * Writes a file inside the tree atomically (temporary file + rename), with
 * `mode` and numeric owner; parent directories are created.
 */
export function writeTreeFile(root: string, path: string, content: string | Buffer, opts: { mode?: number; uid?: number; gid?: number } = {}): string {
  const host = resolveInTree(root, path);
  mkdirSync(dirname(host), { recursive: true, mode: 0o755 });
  const tmp = `${host}.nsbox-tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chownSync(tmp, opts.uid ?? 0, opts.gid ?? 0);
  chmodSync(tmp, opts.mode ?? 0o644);
  renameSync(tmp, host);
  return host;
}

/** Replaces `path` inside the tree with a symbolic link to `target` (a path as the tree sees it). */
export function symlinkInTree(root: string, path: string, target: string): void {
  const host = resolveInTree(root, path, { followLast: false });
  mkdirSync(dirname(host), { recursive: true, mode: 0o755 });
  rmSync(host, { force: true });
  symlinkSync(target, host);
}

/** One /etc/passwd entry of the tree. */
export interface TreeUser { name: string; uid: number; gid: number; home: string; shell: string }

/** The tree's user `name` (or numeric uid), or undefined. */
export function treeUser(root: string, name: string): TreeUser | undefined {
  for (const line of (readTreeFile(root, '/etc/passwd') ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length < 7) continue;
    if (f[0] === name || f[2] === name) return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] };
  }
  return undefined;
}

/** The tree's group `name` (or numeric gid) as a gid, or undefined. */
export function treeGroup(root: string, name: string): number | undefined {
  for (const line of (readTreeFile(root, '/etc/group') ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && (f[0] === name || f[2] === name)) return Number(f[2]);
  }
  return /^\d+$/.test(name) ? Number(name) : undefined;
}

/**
 * `user[:group]` (names from the tree, or numbers) as uid and gid; the
 * group defaults to the user's primary group.
 *
 * @example
 * ownerInTree('/srv/t', 'www-data:www-data') // { uid: 33, gid: 33 }
 */
export function ownerInTree(root: string, owner: string): { uid: number; gid: number } {
  const [u, g] = owner.split(':');
  const user = treeUser(root, u);
  const uid = user?.uid ?? (/^\d+$/.test(u) ? Number(u) : undefined);
  if (uid === undefined) throw new NsboxError(`cannot find user \`${u}\` in the tree's /etc/passwd`, { code: 'post-step' });
  const gid = g ? treeGroup(root, g) : user?.gid ?? uid;
  if (gid === undefined) throw new NsboxError(`cannot find group \`${g}\` in the tree's /etc/group`, { code: 'post-step' });
  return { uid, gid };
}
