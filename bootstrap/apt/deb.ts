/**
 * Streams a .deb into a tree: ar → data.tar.{xz,zst,gz,bz2,none} →
 * TreeWriter, without a temporary file and without dpkg on the host.
 * Used for the essential set, which must exist in the tree before the
 * tree's own dpkg can run (as debootstrap and mmdebstrap extract it).
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { VerifyError } from '../../errors.js';
import { readAr } from '../archive/ar.js';
import { extractTar } from '../archive/tar.js';
import type { TreeWriter } from '../archive/writer.js';
import { compressionFromName, decompressStream } from '../decompress.js';

/**
 * Extracts the data member of the .deb at `path` through `writer` and
 * returns the archive paths written (`/usr/bin/dpkg`, …). The caller calls
 * `writer.finish()` once after the last package.
 *
 * @example
 * const w = new TreeWriter('/srv/t');
 * const paths = await extractDeb('/var/cache/nsbox/by-sha256/ab/ab…', w, 'dpkg_1.22.21_amd64.deb');
 * await w.finish();
 */
export async function extractDeb(path: string, writer: TreeWriter, name = path): Promise<string[]> {
  let sawBinary = false;
  for await (const m of readAr(createReadStream(path, { highWaterMark: 1 << 18 }))) {
    if (m.name === 'debian-binary') {
      let text = '';
      for await (const c of m.data) text += c.toString('latin1');
      if (!/^2\.\d+\n?$/.test(text)) throw bad(name, `unsupported package format version \`${text.trim()}\``);
      sawBinary = true;
      continue;
    }
    if (!m.name.startsWith('data.tar')) continue;
    if (!sawBinary) throw bad(name, 'data member before debian-binary');
    const tar = await decompressStream(Readable.from(m.data), compressionFromName(m.name));
    return await extractTar(tar, writer.root, { writer });
  }
  throw bad(name, 'no data.tar member');
}

function bad(name: string, why: string): VerifyError {
  return new VerifyError(`cannot read package \`${name}\`: ${why}`, { hint: 'the package file is corrupt; remove it from the cache and retry' });
}

/**
 * Reads one regular file out of a .deb's data member (the first whose
 * archive path `match` accepts), without extracting anything else.
 *
 * @example
 * const lib = await readDebFile(path, (p) => /\/libeatmydata\.so[.\d]*$/.test(p));
 */
export async function readDebFile(path: string, match: (archivePath: string) => boolean): Promise<{ path: string; data: Buffer } | undefined> {
  const { readTar } = await import('../archive/tar.js');
  for await (const m of readAr(createReadStream(path, { highWaterMark: 1 << 18 }))) {
    if (!m.name.startsWith('data.tar')) continue;
    const tar = await decompressStream(Readable.from(m.data), compressionFromName(m.name));
    let found: { path: string; data: Buffer } | undefined;
    for await (const { entry, data } of readTar(tar)) {
      const hit = !found && entry.kind === 'file' && match(entry.path);
      const chunks: Buffer[] = [];
      for await (const c of data) if (hit) chunks.push(c);
      if (hit) found = { path: entry.path, data: Buffer.concat(chunks) };
    }
    return found;
  }
  return undefined;
}

/** One member of a data.tar, read into memory. */
interface Loaded {
  entry: import('../archive/writer.js').TreeEntry;
  data?: Buffer;
}

/** Reads (decompresses and parses) a .deb's data member into memory. */
async function loadDeb(path: string, name: string): Promise<Loaded[]> {
  const { readTar } = await import('../archive/tar.js');
  let sawBinary = false;
  for await (const m of readAr(createReadStream(path, { highWaterMark: 1 << 18 }))) {
    if (m.name === 'debian-binary') {
      let text = '';
      for await (const c of m.data) text += c.toString('latin1');
      if (!/^2\.\d+\n?$/.test(text)) throw bad(name, `unsupported package format version \`${text.trim()}\``);
      sawBinary = true;
      continue;
    }
    if (!m.name.startsWith('data.tar')) continue;
    if (!sawBinary) throw bad(name, 'data member before debian-binary');
    const out: Loaded[] = [];
    for await (const { entry, data } of readTar(await decompressStream(Readable.from(m.data), compressionFromName(m.name)))) {
      const chunks: Buffer[] = [];
      for await (const c of data) chunks.push(c);
      out.push({ entry, data: entry.kind === 'file' ? (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)) : undefined });
    }
    return out;
  }
  throw bad(name, 'no data.tar member');
}

/**
 * Extracts several .debs into one tree, in order, decompressing up to
 * `ahead` packages in advance (xz runs on libuv's thread pool, so the next
 * packages decompress on another core while this one is written). Calls
 * `onPackage(i, paths)` after each with the archive paths it wrote.
 *
 * @example
 * await extractDebs(paths, new TreeWriter('/srv/t'), { names, onPackage: (i) => progress(i) });
 */
export async function extractDebs(
  paths: string[],
  writer: TreeWriter,
  opts: { names?: string[]; ahead?: number; signal?: AbortSignal; onPackage?: (index: number, written: string[]) => void } = {},
): Promise<void> {
  const ahead = Math.max(1, opts.ahead ?? 2);
  const load = (i: number) => {
    const p = loadDeb(paths[i], opts.names?.[i] ?? paths[i]);
    p.catch(() => {});
    return p;
  };
  const loading = new Map<number, Promise<Loaded[]>>();
  for (let i = 0; i < Math.min(ahead, paths.length); i++) loading.set(i, load(i));
  for (let i = 0; i < paths.length; i++) {
    opts.signal?.throwIfAborted();
    const entries = await loading.get(i)!;
    loading.delete(i);
    if (i + ahead < paths.length) loading.set(i + ahead, load(i + ahead));
    const start = writer.written.length;
    for (const { entry, data } of entries) await writer.add(entry, data);
    opts.onPackage?.(i, writer.written.slice(start));
  }
}
