/**
 * Reads Unix ar archives (the outer format of a .deb: `debian-binary`,
 * `control.tar.*`, `data.tar.*`) as a stream of members.
 */
import type { Readable } from 'node:stream';
import { NsboxError, VerifyError } from '../../errors.js';
import { ByteReader } from './reader.js';

/** One ar member; `data` streams its bytes and must be consumed (or left) before the next member is asked for. */
export interface ArMember {
  name: string;
  size: number;
  mode: number;
  mtime: number;
  data: AsyncIterable<Buffer>;
}

const MAGIC = '!<arch>\n';

/**
 * Iterates over an ar archive's members. Unread member bytes are skipped
 * when the next member is requested.
 *
 * @example
 * for await (const m of readAr(createReadStream('hello_2.10-3_amd64.deb'))) {
 *   if (m.name.startsWith('data.tar')) await extractTar(await decompressStream(Readable.from(m.data), 'auto'), root);
 * }
 */
export async function* readAr(input: Readable | AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<ArMember> {
  const r = new ByteReader(input as AsyncIterable<Buffer> | Iterable<Buffer>, (m) => bad(m));
  try {
    const magic = await r.read(8);
    if (magic.toString('latin1') !== MAGIC) throw bad('not an ar archive (bad magic)');
    let longNames: Buffer | undefined;
    for (;;) {
      const h = await r.read(60);
      if (h.length === 0) return;
      if (h.length < 60 || h[58] !== 0x60 || h[59] !== 0x0a) throw bad(`bad member header at offset ${r.offset - h.length}`);
      let name = h.toString('latin1', 0, 16).trimEnd();
      const size = parseInt(h.toString('latin1', 48, 58).trim(), 10);
      if (!Number.isSafeInteger(size) || size < 0) throw bad(`bad member size at offset ${r.offset - 60}`);
      const end = r.offset + size;
      if (name === '//') {
        longNames = Buffer.concat(await collect(r.take(size)));
      } else if (name === '/' || name === '/SYM64/') {
        await r.skip(size);
      } else {
        if (/^\/\d+$/.test(name) && longNames) {
          const off = Number(name.slice(1));
          const stop = longNames.indexOf('/\n', off);
          name = longNames.toString('utf8', off, stop === -1 ? undefined : stop);
        } else if (name.endsWith('/')) {
          name = name.slice(0, -1);
        }
        yield {
          name,
          size,
          mode: parseInt(h.toString('latin1', 40, 48).trim() || '644', 8),
          mtime: parseInt(h.toString('latin1', 16, 28).trim() || '0', 10),
          data: r.take(size),
        };
        if (r.offset < end) await r.skip(end - r.offset);
      }
      if (size % 2 === 1) await r.read(1);
    }
  } catch (err) {
    if (err instanceof NsboxError) throw err;
    throw bad((err as Error).message, err);
  } finally {
    await r.close();
  }
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return out;
}

function bad(why: string, cause?: unknown): VerifyError {
  return new VerifyError(`cannot read ar archive: ${why}`, { cause, hint: 'the package file is corrupt; remove it from the cache and retry' });
}
