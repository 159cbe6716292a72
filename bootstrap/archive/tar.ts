/**
 * tar → tree, with tar-stream as the parser and TreeWriter as the
 * extractor: exact modes (setuid/setgid/sticky), numeric owners, hard links,
 * symlinks kept verbatim, devices, FIFOs, directories, mtimes, GNU and pax
 * long names, and pax `SCHILY.xattr.*` records (security.capability).
 */
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { extract as tarExtract, type Header } from 'tar-stream';
import { NsboxError, VerifyError } from '../../errors.js';
import { TreeWriter, type EntryKind, type TreeEntry, type WriterOptions } from './writer.js';

const XATTR_PREFIXES = ['SCHILY.xattr.', 'LIBARCHIVE.xattr.'];

/**
 * tar-stream decodes pax values as UTF-8, which mangles binary xattr values
 * (a security.capability blob is not valid UTF-8). Its header decoder is a
 * CommonJS export that its extractor looks up at call time, so it is
 * replaced once by one that keeps xattr values as latin1 strings (one char
 * per byte); every other record decodes exactly as before.
 */
function patchPaxDecoder(): void {
  type Headers = { decodePax: ((buf: Buffer) => Record<string, string>) & { nsbox?: true } };
  // the CLI's bundles carry their own tar-stream, which hands its headers module over (bin/bundle.mjs)
  const bundled = (globalThis as Record<symbol, unknown>)[Symbol.for('nsbox.tar-stream.headers')] as Headers | undefined;
  const require = createRequire(import.meta.url);
  const headers = bundled ?? (require(require.resolve('tar-stream').replace(/index\.js$/, 'headers.js')) as Headers);
  if (headers.decodePax.nsbox) return;
  const patched = (buf: Buffer): Record<string, string> => {
    const result: Record<string, string> = {};
    while (buf.length) {
      let i = 0;
      while (i < buf.length && buf[i] !== 32) i++;
      const len = parseInt(buf.subarray(0, i).toString(), 10);
      if (!len) return result;
      const rec = buf.subarray(i + 1, len - 1);
      const eq = rec.indexOf(0x3d);
      if (eq === -1) return result;
      const key = rec.subarray(0, eq).toString('utf8');
      const binary = XATTR_PREFIXES.some((p) => key.startsWith(p));
      result[key] = rec.subarray(eq + 1).toString(binary ? 'latin1' : 'utf8');
      buf = buf.subarray(len);
    }
    return result;
  };
  headers.decodePax = Object.assign(patched, { nsbox: true as const });
}
patchPaxDecoder();

const KINDS: Partial<Record<Header['type'], EntryKind>> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

/** Converts a tar-stream header to a TreeEntry (pax uid/gid/mtime/xattrs applied). */
export function tarEntry(h: Header): TreeEntry {
  const kind = h.type ? KINDS[h.type] : 'file';
  if (!kind) throw new NsboxError(`cannot extract \`${h.name}\`: unsupported tar entry type \`${h.type}\``);
  const pax = (h.pax ?? {}) as Record<string, string>;
  const entry: TreeEntry = {
    path: h.name,
    kind,
    mode: (h.mode ?? 0o644) & 0o7777,
    uid: pax.uid !== undefined ? Number(pax.uid) : (h.uid ?? 0),
    gid: pax.gid !== undefined ? Number(pax.gid) : (h.gid ?? 0),
    mtime: pax.mtime !== undefined ? Number(pax.mtime) : (h.mtime ? h.mtime.getTime() / 1000 : 0),
  };
  if (kind === 'symlink' || kind === 'hardlink') entry.linkTarget = h.linkname ?? '';
  if (kind === 'char' || kind === 'block') {
    entry.devMajor = h.devmajor ?? 0;
    entry.devMinor = h.devminor ?? 0;
  }
  for (const [k, v] of Object.entries(pax)) {
    const prefix = XATTR_PREFIXES.find((p) => k.startsWith(p));
    if (!prefix) continue;
    entry.xattrs ??= {};
    entry.xattrs[k.slice(prefix.length)] = prefix === 'LIBARCHIVE.xattr.' ? Buffer.from(v, 'base64') : Buffer.from(v, 'latin1');
  }
  return entry;
}

/**
 * Iterates over a tar stream's entries. Each entry's `data` must be
 * consumed (or drained) before the next one is produced.
 *
 * @example
 * for await (const { entry, data } of readTar(stream)) {
 *   if (entry.path === './control') control = await collect(data);
 *   else for await (const _ of data);
 * }
 */
export async function* readTar(input: Readable | AsyncIterable<Buffer> | Iterable<Buffer>, opts: { hint?: string } = {}): AsyncGenerator<{ entry: TreeEntry; data: AsyncIterable<Buffer> }> {
  const ex = tarExtract();
  const feed = (async () => {
    try {
      for await (const chunk of input) {
        if (ex.destroyed) break;
        // A consumer that stops early destroys the extractor: 'close' then ends the wait, not only 'drain'.
        if (!ex.write(chunk as Buffer)) {
          await new Promise<void>((r) => {
            const done = () => {
              ex.off('drain', done);
              ex.off('close', done);
              r();
            };
            ex.on('drain', done);
            ex.on('close', done);
          });
        }
      }
      if (!ex.destroyed) ex.end(undefined);
    } catch (err) {
      ex.destroy(err as Error);
    }
  })();
  try {
    for await (const e of ex) yield { entry: tarEntry(e.header), data: e as AsyncIterable<Buffer> };
  } catch (err) {
    throw corrupt(err, opts.hint);
  } finally {
    ex.destroy();
    await feed;
  }
}

function corrupt(err: unknown, hint = 'the package file is corrupt; remove it from the cache and retry'): Error {
  if (err instanceof NsboxError) return err;
  return new VerifyError(`cannot read tar archive: ${(err as Error).message}`, { cause: err, hint });
}

/**
 * Reads the regular files of a (small) tar into memory, e.g. a .deb's
 * control.tar. Paths are normalized without `./`.
 *
 * @example
 * const files = await readTarFiles(controlStream);
 * files.get('control')?.toString()
 */
export async function readTarFiles(input: Readable | AsyncIterable<Buffer> | Iterable<Buffer>, filter: (path: string) => boolean = () => true): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const { entry, data } of readTar(input)) {
    const p = entry.path.replace(/^(\.?\/)+/, '');
    if (entry.kind === 'file' && filter(p)) {
      const chunks: Buffer[] = [];
      for await (const c of data) chunks.push(c);
      out.set(p, Buffer.concat(chunks));
    } else {
      for await (const _ of data) void _;
    }
  }
  return out;
}

/**
 * Extracts a tar stream into `root` (created if missing) and returns the
 * archive paths written, as dpkg's `.list` files hold them. With a shared
 * `writer` (several archives into one tree), the caller calls
 * `writer.finish()` at the end and gets this archive's paths only.
 *
 * @example
 * const paths = await extractTar(await decompressStream(dataTar, 'xz'), '/srv/tree');
 */
export async function extractTar(input: Readable | AsyncIterable<Buffer> | Iterable<Buffer>, root: string, opts: WriterOptions & { writer?: TreeWriter } = {}): Promise<string[]> {
  await mkdir(root, { recursive: true });
  const writer = opts.writer ?? new TreeWriter(root, opts);
  const start = writer.written.length;
  for await (const { entry, data } of readTar(input)) await writer.add(entry, data);
  return opts.writer ? writer.written.slice(start) : await writer.finish();
}
