/**
 * Streams a .deb into a tree: ar → data.tar.{xz,zst,gz,bz2,none} →
 * TreeWriter, without a temporary file and without dpkg on the host.
 * Used for the essential set, which must exist in the tree before the
 * tree's own dpkg can run (as debootstrap and mmdebstrap extract it).
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
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

/** One member of a data.tar, read into memory. */
interface Loaded {
  entry: import('../archive/writer.js').TreeEntry;
  data?: Buffer;
}

/**
 * Writes a .deb whose data member is stored uncompressed (`data.tar`, which
 * dpkg-deb has always accepted): the same package, but dpkg inside the tree
 * spends no time in xz. Members are copied in their order; the data
 * member's size is patched in once it is known.
 */
class PlainDeb {
  #fh: FileHandle;
  #pos = 0;
  #header = -1;
  #size = 0;

  private constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  static async create(dest: string): Promise<PlainDeb> {
    const d = new PlainDeb(await open(dest, 'w'));
    await d.#write(Buffer.from('!<arch>\n', 'latin1'));
    return d;
  }

  async #write(buf: Buffer): Promise<void> {
    await this.#fh.write(buf, 0, buf.length, this.#pos);
    this.#pos += buf.length;
  }

  /** A whole member. */
  async member(name: string, data: Buffer): Promise<void> {
    await this.#write(arHeader(name, data.length));
    await this.#write(data);
    if (data.length % 2) await this.#write(Buffer.from('\n'));
  }

  /** Starts a member whose size is not known yet. */
  async begin(name: string): Promise<void> {
    this.#header = this.#pos;
    this.#size = 0;
    await this.#write(arHeader(name, 0));
  }

  async chunk(c: Buffer): Promise<void> {
    this.#size += c.length;
    await this.#write(c);
  }

  async end(name: string): Promise<void> {
    if (this.#size % 2) await this.#write(Buffer.from('\n'));
    const h = arHeader(name, this.#size);
    await this.#fh.write(h, 0, h.length, this.#header);
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }
}

function arHeader(name: string, size: number): Buffer {
  const f = (v: string, n: number) => v.padEnd(n, ' ').slice(0, n);
  return Buffer.from(`${f(name, 16)}${f('0', 12)}${f('0', 6)}${f('0', 6)}${f('100644', 8)}${f(String(size), 10)}\`\n`, 'latin1');
}

/** Passes chunks through while copying them into the plain .deb (in order, with backpressure). */
function teeTo(plain: PlainDeb): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      plain.chunk(chunk).then(() => cb(null, chunk), cb);
    },
  });
}

/**
 * Reads (decompresses and parses) a .deb's data member into memory; with
 * `plainDest`, also writes the package there with its data uncompressed.
 */
async function loadDeb(path: string, name: string, plainDest?: string): Promise<Loaded[]> {
  const { readTar } = await import('../archive/tar.js');
  let sawBinary = false;
  const plain = plainDest ? await PlainDeb.create(plainDest) : undefined;
  try {
    for await (const m of readAr(createReadStream(path, { highWaterMark: 1 << 18 }))) {
      if (m.name === 'debian-binary') {
        const chunks: Buffer[] = [];
        for await (const c of m.data) chunks.push(c);
        const text = Buffer.concat(chunks).toString('latin1');
        if (!/^2\.\d+\n?$/.test(text)) throw bad(name, `unsupported package format version \`${text.trim()}\``);
        await plain?.member(m.name, Buffer.concat(chunks));
        sawBinary = true;
        continue;
      }
      if (!m.name.startsWith('data.tar')) {
        if (!plain) continue;
        const chunks: Buffer[] = [];
        for await (const c of m.data) chunks.push(c);
        await plain.member(m.name, Buffer.concat(chunks));
        continue;
      }
      if (!sawBinary) throw bad(name, 'data member before debian-binary');
      let tar = await decompressStream(Readable.from(m.data), compressionFromName(m.name));
      if (plain) {
        await plain.begin('data.tar');
        const tee = teeTo(plain);
        tar.on('error', (e) => tee.destroy(e));
        tar = tar.pipe(tee);
      }
      const out: Loaded[] = [];
      for await (const { entry, data } of readTar(tar)) {
        const chunks: Buffer[] = [];
        for await (const c of data) chunks.push(c);
        out.push({ entry, data: entry.kind === 'file' ? (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)) : undefined });
      }
      if (plain) {
        // tar-stream stops at the end-of-archive blocks; what follows (padding) still belongs in the copy.
        for await (const c of tar) void c;
        await plain.end('data.tar');
      }
      return out;
    }
    throw bad(name, 'no data.tar member');
  } finally {
    await plain?.close();
  }
}

/**
 * Writes the package at `src` to `dest` with its data member uncompressed
 * (see PlainDeb), without parsing it.
 *
 * @example
 * await writePlainDeb('/var/cache/nsbox/by-sha256/ab/ab…', '/srv/t/var/lib/nsbox/plain/apt.deb', 'apt_2.6.1_amd64.deb');
 */
export async function writePlainDeb(src: string, dest: string, name = src): Promise<void> {
  const plain = await PlainDeb.create(dest);
  try {
    let sawData = false;
    for await (const m of readAr(createReadStream(src, { highWaterMark: 1 << 18 }))) {
      if (!m.name.startsWith('data.tar')) {
        const chunks: Buffer[] = [];
        for await (const c of m.data) chunks.push(c);
        await plain.member(m.name, Buffer.concat(chunks));
        continue;
      }
      await plain.begin('data.tar');
      for await (const c of await decompressStream(Readable.from(m.data), compressionFromName(m.name))) await plain.chunk(c as Buffer);
      await plain.end('data.tar');
      sawData = true;
    }
    if (!sawData) throw bad(name, 'no data.tar member');
  } finally {
    await plain.close();
  }
}

/**
 * Extracts several .debs into one tree. A package is decompressed (xz runs
 * on libuv's thread pool, so on another core) as soon as its file is there
 * — `paths` may hold promises of files still downloading — with at most
 * `ahead` packages in memory at once, and written as soon as it is read:
 * a big package still downloading holds none of the others up. (The
 * order of this extraction does not matter: it only makes the tree's dpkg
 * runnable, and dpkg writes every file again; packages that ship the same
 * path are a file conflict dpkg itself refuses.) Calls `onPackage(i,
 * paths)` after each with the archive paths it wrote. With `plainDests`,
 * each package is also written there with its data member uncompressed,
 * for the tree's dpkg (see PlainDeb).
 *
 * @example
 * await extractDebs(paths, new TreeWriter('/srv/t'), { names, onPackage: (i) => progress(i) });
 */
export async function extractDebs(
  paths: Array<string | Promise<string>>,
  writer: TreeWriter,
  opts: {
    names?: string[];
    plainDests?: string[];
    ahead?: number;
    signal?: AbortSignal;
    onPackage?: (index: number, written: string[]) => void;
    /** Archive paths (`usr/share/doc/x`, no leading `./`) not to write; a hard link to one is left out too. */
    skip?: (path: string) => boolean;
  } = {},
): Promise<void> {
  const ahead = Math.max(1, opts.ahead ?? 4);
  const skip = opts.skip;
  const plain = (p: string) => p.replace(/^\.?\/+/, '');
  let slots = ahead;
  const waiting: Array<() => void> = [];
  let writing = Promise.resolve();
  let failed = false;
  const one = async (i: number) => {
    const path = await paths[i];
    if (slots === 0) await new Promise<void>((r) => waiting.push(r));
    slots--;
    try {
      if (failed) return;
      opts.signal?.throwIfAborted();
      const entries = await loadDeb(path, opts.names?.[i] ?? path, opts.plainDests?.[i]);
      // one package written at a time: the writer's directory cache is not shared between writes
      const write = writing.then(async () => {
        if (failed) return;
        opts.signal?.throwIfAborted();
        const start = writer.written.length;
        for (const { entry, data } of entries) {
          if (skip && (skip(plain(entry.path)) || (entry.kind === 'hardlink' && skip(plain(entry.linkTarget ?? ''))))) continue;
          await writer.add(entry, data);
        }
        opts.onPackage?.(i, writer.written.slice(start));
      });
      writing = write.catch(() => {});
      await write;
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      slots++;
      waiting.shift()?.();
    }
  };
  const results = await Promise.allSettled(paths.map((_, i) => one(i)));
  // nothing is left running when this returns or throws
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}
