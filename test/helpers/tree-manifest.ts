/**
 * What a tree holds, as sorted lines to compare two trees by: every path
 * with its type, permission bits, owner, size and SHA-256 (files), link
 * target (symlinks), device numbers, extended attributes, and optionally
 * its mtime in whole seconds. Hard links show as the same inode group.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { loadXattrReader } from '../../bootstrap/archive/native.js';

export interface ManifestOptions {
  /** Include mtimes (seconds). */
  mtimes?: boolean;
  /** Leave out device nodes (what an OCI layer leaves out). */
  devices?: boolean;
  /** Leave out sockets (what tar leaves out). */
  sockets?: boolean;
  /** Tree-relative paths not listed. */
  exclude?: string[];
}

export async function treeManifest(root: string, opts: ManifestOptions = {}): Promise<string[]> {
  const xattrs = await loadXattrReader();
  const out: string[] = [];
  const inodes = new Map<string, string>();
  // names as bytes: a tree's names need not be UTF-8 (shown as latin1, one char a byte)
  const walk = (relBuf: Buffer) => {
    const rel = relBuf.toString('latin1');
    const abs = relBuf.length ? Buffer.concat([Buffer.from(`${root}/`), relBuf]) : Buffer.from(root);
    const st = lstatSync(abs, { bigint: true });
    const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : 's';
    if ((type === 'c' || type === 'b') && opts.devices === false) return;
    if (type === 's' && opts.sockets === false) return;
    if (opts.exclude?.includes(rel)) return;
    const fields = [rel || '.', type, (st.mode & 0o7777n).toString(8), `${st.uid}:${st.gid}`];
    if (type === 'f') fields.push(String(st.size), createHash('sha256').update(readFileSync(abs)).digest('hex'));
    if (type === 'l') fields.push(`-> ${readlinkSync(abs, { encoding: 'buffer' }).toString('latin1')}`);
    if (type === 'c' || type === 'b') fields.push(`dev ${st.rdev}`);
    if (type !== 'd' && st.nlink > 1n) {
      const id = `${st.dev}:${st.ino}`;
      if (!inodes.has(id)) inodes.set(id, rel);
      fields.push(`inode-of ${inodes.get(id)}`);
    }
    const x = xattrs(abs);
    if (x.length) fields.push(`xattrs ${x.map(([k, v]) => `${k}=${v.toString('hex')}`).join(',')}`);
    if (opts.mtimes) fields.push(`mtime ${st.mtimeNs / 1_000_000_000n}`);
    out.push(fields.join(' '));
    if (type === 'd') {
      for (const n of readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) walk(relBuf.length ? Buffer.concat([relBuf, Buffer.from('/'), n]) : n);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}
