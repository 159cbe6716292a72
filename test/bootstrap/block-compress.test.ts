import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { BlockCompressor, crc32Combine, type BlockKind } from '../../bootstrap/block-compress.js';
import { decompressStream } from '../../bootstrap/decompress.js';
import { tempDir } from './helpers.js';

/** Compresses `chunks` with a BlockCompressor; the output in one buffer. */
async function compress(kind: BlockKind, chunks: Buffer[], threads?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), new BlockCompressor(kind, { threads }), new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
  return Buffer.concat(out);
}

/** Splits `data` into chunks of the given sizes, cycling through them. */
function chop(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length];
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

/** What the host's own tool makes of it (`gzip -t` also checks the CRC and the length). */
function hostDecompress(kind: BlockKind, data: Buffer): Buffer {
  const t = tempDir();
  try {
    const p = join(t.dir, kind === 'gzip' ? 'x.gz' : 'x.zst');
    writeFileSync(p, data);
    if (kind === 'gzip') execFileSync('gzip', ['-t', p]);
    return execFileSync(kind, ['-dc', p], { maxBuffer: 1 << 28 });
  } finally { t.cleanup(); }
}

describe('bootstrap/block-compress', function () {
  this.timeout(60_000);
  // text with repeats across block boundaries (what the gzip dictionary carries over), and noise
  const text = Buffer.from(Array.from({ length: 300000 }, (_, i) => `usr/share/doc/package-${i % 1013}/copyright ${i}\n`).join(''));
  const data = Buffer.concat([text, randomBytes(3 << 20), text.subarray(0, 5 << 20)]);

  it('combines CRC-32s as if the data had been summed in one piece', () => {
    for (const cut of [0, 1, 4095, 1 << 20, data.length - 1, data.length]) {
      const a = data.subarray(0, cut), b = data.subarray(cut);
      assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(data), `cut at ${cut}`);
    }
  });

  for (const kind of ['gzip', 'zstd'] as const) {
    it(`${kind}: the host's ${kind} and nsbox's own reader get the input back`, async () => {
      const out = await compress(kind, chop(data, [777, 1 << 20, 65536 + 3]));
      assert.ok(out.length < data.length * 0.8, 'it compresses');
      assert.ok(hostDecompress(kind, out).equals(data));
      const back: Buffer[] = [];
      for await (const c of await decompressStream(Readable.from([out]), kind)) back.push(c as Buffer);
      assert.ok(Buffer.concat(back).equals(data));
    });

    it(`${kind}: the same bytes whatever the chunking and the number of threads`, async () => {
      const a = await compress(kind, chop(data, [1 << 20]), 1);
      const b = await compress(kind, chop(data, [12345, 999999]), 3);
      assert.ok(a.equals(b));
    });

    it(`${kind}: an empty input is a valid, empty ${kind} stream`, async () => {
      const out = await compress(kind, []);
      assert.ok(out.length > 0);
      assert.equal(hostDecompress(kind, out).length, 0);
    });

    it(`${kind}: whole blocks from takeBuffer go out uncopied and give the same bytes`, async () => {
      const c = new BlockCompressor(kind, { threads: 2 });
      const blocks: Buffer[] = [];
      for (let off = 0; off < data.length;) {
        const b = c.takeBuffer();
        const n = data.copy(b, 0, off);
        blocks.push(n === b.length ? b : b.subarray(0, n));
        off += n;
      }
      const out: Buffer[] = [];
      await pipeline(Readable.from(blocks), c, new Writable({ write(x, _e, cb) { out.push(x); cb(); } }));
      assert.equal(blocks[0].length, 0, 'the first block was handed to a worker, not copied');
      assert.ok(Buffer.concat(out).equals(await compress(kind, [data])));
    });

    it(`${kind}: a source that fails fails the pipeline, with its own error`, async () => {
      async function* failing() { yield data.subarray(0, 5 << 20); throw new Error('disk went away'); }
      await assert.rejects(pipeline(failing(), new BlockCompressor(kind), new Writable({ write(_c, _e, cb) { cb(); } })), /disk went away/);
    });
  }
});
