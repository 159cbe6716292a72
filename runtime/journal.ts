/**
 * --link-journal, as systemd-nspawn does it: make the container's persistent
 * journal visible to the host's journalctl under /var/log/journal/<machine-id>.
 *
 * - guest: the journal lives in the tree (/var/log/journal/<id>); the host
 *   gets a symlink to it.
 * - host: the journal lives on the host (/var/log/journal/<id>) and is
 *   bind-mounted into the container.
 * - try-guest / try-host: the same, but a failure only warns.
 * - auto (default): "host" if the host directory already exists, "guest" if
 *   the tree's does and the host has a /var/log/journal; otherwise nothing.
 * - no: nothing.
 */
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SetupError } from '../errors.js';
import type { LinkJournal } from './options.js';
import { resolveInTree } from './tree.js';

export const HOST_JOURNAL = process.env.NSBOX_HOST_JOURNAL ?? '/var/log/journal';

export interface JournalLink {
  /** Bind mount for "host" mode. */
  bind?: { source: string; dest: string };
  /** What was done, for the log. */
  note?: string;
}

/**
 * Prepares journal linking for machine id `id` (32 hex digits). Returns the
 * bind mount to add for host mode. Throws for a failed strict mode.
 */
export function linkJournal(mode: LinkJournal, tree: string, id: string, warn: (l: string) => void): JournalLink {
  const hostDir = join(HOST_JOURNAL, id);
  const guestDir = `/var/log/journal/${id}`;
  const treeJournal = resolveInTree(tree, '/var/log/journal');
  let effective: 'host' | 'guest' | 'no' = 'no';
  const strict = mode === 'host' || mode === 'guest';
  if (mode === 'auto') {
    if (existsSync(hostDir) && !isSymlink(hostDir)) effective = 'host';
    else if (treeJournal && existsSync(join(treeJournal, id)) && existsSync(HOST_JOURNAL)) effective = 'guest';
  } else if (mode === 'host' || mode === 'try-host') effective = 'host';
  else if (mode === 'guest' || mode === 'try-guest') effective = 'guest';
  if (effective === 'no') return {};
  try {
    if (effective === 'host') {
      if (isSymlink(hostDir)) throw new Error(`\`${hostDir}\` is a symlink (left by guest mode)`);
      mkdirSync(hostDir, { recursive: true, mode: 0o2755 });
      return { bind: { source: hostDir, dest: guestDir }, note: `journal on the host in ${hostDir}` };
    }
    // guest: persistent journal in the tree, symlinked from the host
    const inTree = resolveInTree(tree, '/var/log') ?? join(tree, 'var/log');
    const target = join(inTree, 'journal', id);
    mkdirSync(target, { recursive: true, mode: 0o2755 });
    mkdirSync(HOST_JOURNAL, { recursive: true, mode: 0o2755 });
    if (isSymlink(hostDir)) {
      if (readlinkSync(hostDir) !== target) throw new Error(`\`${hostDir}\` already links to \`${readlinkSync(hostDir)}\``);
    } else if (existsSync(hostDir)) {
      throw new Error(`\`${hostDir}\` exists and is not a link to this tree`);
    } else {
      symlinkSync(target, hostDir);
    }
    return { note: `journal in the tree, linked from ${hostDir}` };
  } catch (e) {
    const msg = `cannot link the journal (--link-journal=${mode}): ${(e as Error).message}`;
    if (strict) throw new SetupError(msg, { hint: 'use --link-journal=try-host or try-guest to continue without it', exitCode: 125 });
    warn(`nsbox: warning: ${msg}`);
    return {};
  }
}

function isSymlink(p: string): boolean {
  try { return lstatSync(p).isSymbolicLink(); } catch { return false; }
}
