/**
 * cpio "newc" (SVR4, magic 070701/070702): the RPM payload format. Entries
 * go to the tree through the same TreeWriter as tar. Hard links in newc are
 * entries sharing an inode number; the data comes with the last of them
 * (earlier ones have size 0), so those names are held back until the data
 * arrives, then linked to it.
 */
import { mkdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { NsboxError, VerifyError } from '../../errors.js';
import { ByteReader } from './reader.js';
import { TreeWriter, type EntryKind, type TreeEntry, type WriterOptions } from './writer.js';

/** A cpio member: a TreeEntry plus the newc fields hard links need. */
export interface CpioEntry extends TreeEntry {
  ino: number;
  dev: string;
  nlink: number;
  size: number;
}

const TYPES: Record<number, EntryKind> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symlink',
  0o020000: 'char',
  0o060000: 'block',
  0o010000: 'fifo',
};

/**
 * Iterates over a newc archive. Symlink targets are read into
 * `linkTarget`; for files, `data` streams the contents and must be consumed
 * (or left) before the next entry. Sockets are skipped.
 *
 * @example
 * for await (const { entry } of readCpio(payloadStream)) console.log(entry.path, entry.size);
 */
export async function* readCpio(input: Readable | AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<{ entry: CpioEntry; data: AsyncIterable<Buffer> }> {
  const r = new ByteReader(input as AsyncIterable<Buffer> | Iterable<Buffer>, (m) => bad(m));
  const pad = async () => {
    const p = (4 - (r.offset % 4)) % 4;
    if (p) await r.read(p);
  };
  try {
    for (;;) {
      const h = await r.read(110);
      if (h.length < 110) throw bad(h.length === 0 ? 'archive ends without a TRAILER!!! entry' : 'truncated header');
      const magic = h.toString('latin1', 0, 6);
      if (magic !== '070701' && magic !== '070702') throw bad(`unsupported format (magic \`${magic}\`, expected newc 070701)`);
      const f = (i: number) => {
        const s = h.toString('latin1', 6 + i * 8, 14 + i * 8);
        if (!/^[0-9a-fA-F]{8}$/.test(s)) throw bad(`bad header field at offset ${r.offset - 110 + 6 + i * 8}`);
        return parseInt(s, 16);
      };
      const [ino, mode, uid, gid, nlink, mtime, size, devMaj, devMin, rdevMaj, rdevMin, namesize] = Array.from({ length: 12 }, (_, i) => f(i));
      const nameBuf = await r.read(namesize);
      if (nameBuf.length < namesize || namesize === 0) throw bad('truncated name');
      const name = nameBuf.toString('utf8', 0, namesize - 1);
      await pad();
      if (name === 'TRAILER!!!') return;
      const kind = TYPES[mode & 0o170000];
      const entry: CpioEntry = { path: name, kind: kind ?? 'file', mode: mode & 0o7777, uid, gid, mtime, ino, dev: `${devMaj}:${devMin}`, nlink, size };
      if (!kind) {
        await r.skip(size); // sockets and unknown types: nothing to extract
        await pad();
        continue;
      }
      if (kind === 'symlink') {
        entry.linkTarget = (await r.read(size)).toString('utf8');
        await pad();
        yield { entry, data: empty() };
        continue;
      }
      if (kind === 'char' || kind === 'block') {
        entry.devMajor = rdevMaj;
        entry.devMinor = rdevMin;
      }
      const end = r.offset + size;
      yield { entry, data: r.take(size) };
      if (r.offset < end) await r.skip(end - r.offset);
      await pad();
    }
  } catch (err) {
    if (err instanceof NsboxError) throw err;
    throw bad((err as Error).message, err);
  } finally {
    await r.close();
  }
}

async function* empty(): AsyncGenerator<Buffer> {}

function bad(why: string, cause?: unknown): VerifyError {
  return new VerifyError(`cannot read cpio archive: ${why}`, { cause, hint: 'the package payload is corrupt; remove it from the cache and retry' });
}

/**
 * Extracts a newc stream into `root` (created if missing); returns the
 * archive paths written (held-back hard links are listed when written).
 *
 * @example
 * const paths = await extractCpio(await decompressStream(payload, 'zstd'), '/srv/tree');
 */
export async function extractCpio(input: Readable | AsyncIterable<Buffer> | Iterable<Buffer>, root: string, opts: WriterOptions & { writer?: TreeWriter } = {}): Promise<string[]> {
  mkdirSync(root, { recursive: true }); // synchronous like the writer: no event-loop turn per package
  const writer = opts.writer ?? new TreeWriter(root, opts);
  const start = writer.written.length;
  /** dev:ino → names seen without data, waiting for the one that carries it. */
  const held = new Map<string, CpioEntry[]>();
  const linkHeld = async (key: string, to: CpioEntry) => {
    for (const e of held.get(key) ?? []) await writer.add({ ...e, kind: 'hardlink', linkTarget: to.path });
    held.delete(key);
  };
  for await (const { entry, data } of readCpio(input)) {
    if (entry.kind !== 'file' || entry.nlink < 2) {
      await writer.add(entry, data);
      continue;
    }
    const key = `${entry.dev}:${entry.ino}`;
    const group = held.get(key) ?? [];
    if (entry.size === 0 && group.length + 1 < entry.nlink) {
      for await (const _ of data) void _;
      group.push(entry);
      held.set(key, group);
      continue;
    }
    await writer.add(entry, data);
    await linkHeld(key, entry);
  }
  // Groups whose data never came (all empty, or links missing): the first name gets the (empty) file.
  for (const [key, group] of [...held]) {
    const [first] = group;
    held.set(key, group.slice(1));
    await writer.add(first, Buffer.alloc(0));
    await linkHeld(key, first);
  }
  return opts.writer ? writer.written.slice(start) : await writer.finish();
}
