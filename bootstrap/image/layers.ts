/**
 * Applies archives to a tree being imported: a plain tar, or OCI layers
 * one after the other (image-spec layer.md, "Applying Changesets").
 *
 * Safety, against hostile archives: member paths with `..` and absolute
 * member paths (or hard-link targets) are refused (`/` alone names the
 * root, as umoci's layers do); everything else goes
 * through TreeWriter, which resolves parents inside the tree (a symlink
 * such as `x -> /etc`, then `x/passwd`, lands in the tree's own /etc) and
 * never follows a final symlink. Whiteouts resolve the same way.
 *
 * Whiteouts (OCI layers only): `DIR/.wh.NAME` removes NAME as the lower
 * layers left it; `DIR/.wh..wh..opq` hides everything the lower layers
 * had in DIR, applied when the layer ends so that what this layer itself
 * put there stays ("regardless of the ordering in which the whiteout file
 * was encountered"); a whiteout never removes what its own layer wrote,
 * and is itself never written. Other `.wh..wh.` names (AUFS bookkeeping)
 * are skipped.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { VerifyError } from '../../errors.js';
import type { TreeEntry } from '../archive/writer.js';
import { drain, TreeWriter } from '../archive/writer.js';

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

function hostile(path: string, why: string): VerifyError {
  return new VerifyError(`cannot import \`${path.slice(0, 200)}\`: ${why}`, { hint: 'the image is malformed or malicious; nothing was imported' });
}

/** The root directory's own attributes, as the last archive that named `./` gave them. */
export type RootEntry = Pick<TreeEntry, 'mode' | 'uid' | 'gid' | 'mtime' | 'xattrs'>;

/**
 * Writes one archive's members into the tree behind `writer`. Returns the
 * root entry's attributes when the archive had one, and how many members
 * were applied.
 *
 * @example
 * for (const layer of layers) await applyArchive(writer, readTar(await layerStream(layer)), { whiteouts: true });
 */
export async function applyArchive(
  writer: TreeWriter,
  members: AsyncIterable<{ entry: TreeEntry; data: AsyncIterable<Buffer> }>,
  opts: { whiteouts: boolean; signal?: AbortSignal },
): Promise<{ root?: RootEntry; entries: number }> {
  /** Tree-relative paths this layer wrote, and their parents. */
  const written = new Set<string>();
  const parents = new Set<string>(['']);
  const opaque: string[] = [];
  let root: RootEntry | undefined;
  let entries = 0;
  for await (const { entry, data } of members) {
    opts.signal?.throwIfAborted();
    // `/` alone is the root (umoci writes it so); an absolute path to anything else is refused
    if (entry.path.startsWith('/') && /[^/.]/.test(entry.path)) throw hostile(entry.path, 'absolute path in the archive');
    if (entry.kind === 'hardlink' && (entry.linkTarget ?? '').startsWith('/')) throw hostile(entry.path, `hard link to an absolute path \`${entry.linkTarget}\``);
    // names are read as UTF-8; one that is not would be written under a mangled name
    if (entry.path.includes('\uFFFD') || entry.linkTarget?.includes('\uFFFD')) {
      throw new VerifyError(`cannot import \`${entry.path.slice(0, 200)}\`: its name or link target is not UTF-8`, { hint: 'nsbox imports archives whose names are UTF-8; rename the file in the source tree' });
    }
    const parts = entry.path.split('/').filter((c) => c !== '' && c !== '.');
    if (parts.includes('..') || (entry.kind === 'hardlink' && (entry.linkTarget ?? '').split('/').includes('..'))) throw hostile(entry.path, 'path leaves the tree');
    if (!parts.length) {
      // the root itself: its attributes are applied at the end
      await drain(data);
      if (entry.kind !== 'directory') throw hostile(entry.path, 'names the tree root as something other than a directory');
      root = { mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime, xattrs: entry.xattrs };
      continue;
    }
    const name = parts[parts.length - 1];
    if (opts.whiteouts && name.startsWith(WH)) {
      await drain(data);
      const dir = parts.slice(0, -1).join('/');
      if (name === OPAQUE) opaque.push(writer.locate(dir, { dir: true }));
      else if (!name.startsWith(`${WH}${WH}`)) {
        const target = name.slice(WH.length);
        if (!target || target === '.' || target === '..') throw hostile(entry.path, 'whiteout of an invalid name');
        const rel = writer.locate(dir ? `${dir}/${target}` : target);
        if (!written.has(rel)) writer.removeLocated(rel);
      }
      continue;
    }
    const rel = writer.locate(entry.path);
    await writer.add(entry, data);
    written.add(rel);
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) parents.add(rel.slice(0, i));
    entries++;
  }
  for (const dir of opaque) hideLower(writer, dir, written, parents);
  return { root, entries };
}

/** Removes below tree-relative `dir` whatever this layer did not write (or lead to). */
function hideLower(writer: TreeWriter, dir: string, written: Set<string>, parents: Set<string>): void {
  const abs = dir ? join(writer.root, dir) : writer.root;
  let names: string[];
  try {
    if (!lstatSync(abs).isDirectory()) return;
    names = readdirSync(abs);
  } catch {
    return;
  }
  for (const n of names) {
    const rel = dir ? `${dir}/${n}` : n;
    if (parents.has(rel)) hideLower(writer, rel, written, parents);
    else if (written.has(rel)) {
      if (lstatSync(join(writer.root, rel)).isDirectory()) hideLower(writer, rel, written, parents);
    } else writer.removeLocated(rel);
  }
}
