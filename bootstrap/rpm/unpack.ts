/**
 * Unpacking verified .rpm files into a tree through the shared cpio reader
 * and TreeWriter, the way rpm's fsm does it: the payload gives names,
 * contents, hard-link groups, symlink targets and device numbers; the
 * *header* is authoritative for the rest — mode, mtime, owner and group by
 * name (mapped through the tree's own /etc/passwd and /etc/group, so ids
 * are the tree's, not the build host's; unknown names become root, as rpm
 * does with a warning) and file capabilities (FILECAPS text →
 * `security.capability`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CAPABILITIES } from '../../runtime/caps.js';
import { VerifyError } from '../../errors.js';
import { extractCpio } from '../archive/cpio.js';
import { TreeWriter, drain, entryComponents, type EntryData, type TreeEntry } from '../archive/writer.js';
import { Scratch } from '../scratch.js';
import { fileEntries, payloadData, type RpmFile, type RpmFileEntry } from './header.js';

/** User and group names of a tree, from its /etc/passwd and /etc/group. */
export class TreeIds {
  users = new Map<string, number>([['root', 0]]);
  groups = new Map<string, number>([['root', 0]]);
  /** `user:name` / `group:name` that were not found (mapped to root). */
  readonly unknown = new Set<string>();

  constructor(readonly root: string) {}

  /** (Re)reads the tree's passwd and group files. */
  load(): void {
    this.users = readIds(join(this.root, 'etc/passwd'), 2);
    this.groups = readIds(join(this.root, 'etc/group'), 2);
  }

  uid(name: string): number {
    return this.#look(this.users, name, 'user');
  }

  gid(name: string): number {
    return this.#look(this.groups, name, 'group');
  }

  #look(map: Map<string, number>, name: string, kind: string): number {
    const id = map.get(name) ?? (/^\d+$/.test(name) ? Number(name) : undefined);
    if (id !== undefined) return id;
    if (name !== 'root') this.unknown.add(`${kind}:${name}`);
    return 0;
  }
}

function readIds(path: string, field: number): Map<string, number> {
  const out = new Map<string, number>([['root', 0]]);
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length > field && f[0] && /^\d+$/.test(f[field]!)) out.set(f[0], Number(f[field]));
  }
  return out;
}

/** A TreeWriter that takes each entry's metadata from the RPM header of the package being written. */
class RpmTreeWriter extends TreeWriter {
  meta = new Map<string, RpmFileEntry>();
  ids!: TreeIds;
  /** Leave out directory entries (parents are still made, 0755): see RpmUnpacker. */
  skipDirectories = false;
  /** Write only the files, symlinks and devices whose header entry this accepts (hard-link groups always whole). */
  only?: (file: RpmFileEntry) => boolean;

  override async add(entry: TreeEntry, data?: EntryData): Promise<void> {
    const h = this.meta.get(`/${entryComponents(entry.path).join('/')}`);
    const unwanted = entry.kind === 'directory' ? this.skipDirectories : !!this.only && !!h && entry.kind !== 'hardlink' && ((entry as { nlink?: number }).nlink ?? 1) < 2 && !this.only(h);
    if (unwanted) return drain(data);
    if (h) {
      entry = { ...entry, mode: h.mode & 0o7777, mtime: h.mtime, uid: this.ids.uid(h.user), gid: this.ids.gid(h.group) };
      if (h.caps && entry.kind === 'file') entry.xattrs = { ...entry.xattrs, 'security.capability': capabilityXattr(h.caps) };
    }
    return super.add(entry, data);
  }
}

/**
 * Extracts packages into a tree in the order given.
 *
 * @example
 * const u = new RpmUnpacker('/srv/f40');
 * for (const rpm of verified) await u.extract(rpm);
 * await u.finish();
 */
export class RpmUnpacker {
  readonly #writer: RpmTreeWriter;
  readonly ids: TreeIds;
  /** The compressed and decompressed payload of the package being written, reused for the next. */
  readonly #scratch = { input: new Scratch(), output: new Scratch() };

  /**
   * `skipDirectories`: write no directory entry, only what lies in them
   * (their parents made as needed, 0755). For rpm's runtime: a Fedora
   * `filesystem` package is some two thousand directories rpm creates
   * anyway, with their real modes, when it installs the package.
   */
  constructor(readonly root: string, opts: { skipDirectories?: boolean } = {}) {
    this.#writer = new RpmTreeWriter(root);
    this.#writer.skipDirectories = !!opts.skipDirectories;
    this.ids = new TreeIds(root);
    this.#writer.ids = this.ids;
  }

  /**
   * Writes one verified package's payload (of it only the files whose
   * header entry `only` accepts, when given); returns the paths written.
   * One package at a time: await each.
   */
  async extract(rpm: RpmFile, only?: (file: RpmFileEntry) => boolean): Promise<string[]> {
    const files = fileEntries(rpm.header);
    this.#writer.meta = new Map(files.map((f) => [f.path, f]));
    this.#writer.only = only;
    const written = await extractCpio(await payloadData(rpm, this.#scratch), this.root, { writer: this.#writer });
    // setup ships passwd and group: later packages' owners are looked up in them
    if (files.some((f) => f.path === '/etc/passwd' || f.path === '/etc/group')) {
      await this.#writer.finish();
      this.ids.load();
    }
    return written;
  }

  /** Waits for background writes and sets directory times. */
  async finish(): Promise<void> {
    await this.#writer.finish();
  }
}

/**
 * Converts a capability text (cap_from_text(3): `cap_net_raw=ep`,
 * `cap_net_admin,cap_net_raw+ep`, `= cap_setuid+ep`) into the
 * `security.capability` value (vfs_cap_data revision 2).
 *
 * @example
 * capabilityXattr('cap_net_raw=ep'); // <Buffer 01 00 00 02 00 20 00 00 …>
 */
export function capabilityXattr(text: string): Buffer {
  let permitted = 0n, inheritable = 0n, effective = 0n;
  const all = Object.values(CAPABILITIES).reduce((m, n) => m | (1n << BigInt(n)), 0n);
  for (const clause of text.trim().split(/\s+/)) {
    const m = /^([^=+-]*)((?:[=+-][eip]*)+)$/.exec(clause);
    if (!m) throw new VerifyError(`cannot read file capabilities \`${text}\``);
    let set = 0n;
    for (const name of m[1] ? m[1].split(',') : ['all']) {
      const n = name.toLowerCase();
      if (n === 'all') { set = all; continue; }
      const num = CAPABILITIES[n.toUpperCase().startsWith('CAP_') ? n.toUpperCase() : `CAP_${n.toUpperCase()}`];
      if (num === undefined) throw new VerifyError(`cannot read file capabilities \`${text}\`: unknown capability \`${name}\``);
      set |= 1n << BigInt(num);
    }
    for (const [, op, flags] of m[2]!.matchAll(/([=+-])([eip]*)/g)) {
      if (op === '=') { permitted &= ~set; inheritable &= ~set; effective &= ~set; }
      const apply = (v: bigint, f: string) => (!flags!.includes(f) ? v : op === '-' ? v & ~set : v | set);
      permitted = apply(permitted, 'p');
      inheritable = apply(inheritable, 'i');
      effective = apply(effective, 'e');
    }
  }
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000000 | (effective ? 1 : 0), 0);
  b.writeUInt32LE(Number(permitted & 0xffffffffn), 4);
  b.writeUInt32LE(Number(inheritable & 0xffffffffn), 8);
  b.writeUInt32LE(Number(permitted >> 32n), 12);
  b.writeUInt32LE(Number(inheritable >> 32n), 16);
  return b;
}
