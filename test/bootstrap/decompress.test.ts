import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { compressionFromName, createDecompressor, decompressBuffer, decompressStream, detectCompression } from '../../bootstrap/decompress.js';
import { have, sh, tempDir } from './helpers.js';
import { Scratch } from '../../bootstrap/scratch.js';
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';

/** Compresses with a host tool (xz, zstd, bzip2). */
function hostCompress(tool: string, data: Buffer): Buffer {
  const t = tempDir();
  try {
    const p = join(t.dir, 'in');
    writeFileSync(p, data);
    sh(tool, ['-q', '-k', p]);
    const ext = { xz: '.xz', zstd: '.zst', bzip2: '.bz2' }[tool]!;
    return readFileSync(p + ext);
  } finally {
    t.cleanup();
  }
}

async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('bootstrap/decompress', () => {
  // Text-like data with runs, so every codec's paths (runs, literals) are exercised.
  const text = Buffer.from(Array.from({ length: 40000 }, (_, i) => `Package: p${i % 997}\nVersion: ${i}.0-${'a'.repeat(i % 13)}\n`).join(''));
  const noise = randomBytes(300000);
  const data = Buffer.concat([text, noise]);

  it('maps file names to compressions', () => {
    assert.deepEqual(['Packages.xz', 'data.tar.zst', 'primary.xml.gz', 'filelists.xml.bz2', 'Release'].map(compressionFromName), ['xz', 'zstd', 'gzip', 'bzip2', 'none']);
  });

  for (const tool of ['xz', 'zstd', 'bzip2'] as const) {
    it(`decompresses ${tool} made by the host tool, streaming and by magic bytes`, async function () {
      if (!have(tool)) this.skip();
      const z = hostCompress(tool, data);
      const kind = detectCompression(z);
      assert.equal(kind, tool);
      const chunks = Array.from({ length: Math.ceil(z.length / 4096) }, (_, i) => z.subarray(i * 4096, (i + 1) * 4096));
      assert.ok((await collect(await decompressStream(Readable.from(chunks), 'auto'))).equals(data));
      assert.ok((await decompressBuffer(z, kind)).equals(data));
    });
  }

  it('decompresses concatenated xz streams and concatenated bzip2 streams', async function () {
    if (!have('xz') || !have('bzip2')) this.skip();
    for (const tool of ['xz', 'bzip2']) {
      const z = Buffer.concat([hostCompress(tool, text), hostCompress(tool, noise)]);
      assert.ok((await decompressBuffer(z)).equals(data), tool);
    }
  });

  it('decompresses gzip and passes uncompressed data through', async () => {
    assert.ok((await decompressBuffer(gzipSync(data))).equals(data));
    assert.ok((await collect(await decompressStream(Readable.from([text]), 'auto'))).equals(text));
  });

  it('falls back to the pure-JS zstd decoder with the same output', async function () {
    if (!have('zstd')) this.skip();
    const z = hostCompress('zstd', data);
    const dec = await createDecompressor('zstd', { forceFallback: true });
    assert.ok((await collect(Readable.from([z]).pipe(dec))).equals(data));
  });

  it('decompresses zstd into a reused buffer when it fits, and on its own when it does not', async function () {
    if (!have('zstd')) this.skip();
    const t = tempDir();
    try {
      const p = join(t.dir, 'in');
      writeFileSync(p, data);
      // rpm writes its payload through zstd's streaming API: no content size in the frame
      sh('zstd', ['-q', '--no-content-size', '-o', `${p}.zst`, p]);
      const z = readFileSync(`${p}.zst`);
      const scratch = new Scratch();
      const exact = await decompressBuffer(z, 'zstd', scratch.get(data.length));
      assert.ok(exact.equals(data));
      assert.equal(exact.buffer, scratch.get(1).buffer, 'the output is a view of the scratch buffer');
      assert.ok((await decompressBuffer(z, 'zstd', Buffer.alloc(data.length + 5000))).equals(data));
      const small = Buffer.alloc(1000);
      const fallback = await decompressBuffer(z, 'zstd', small);
      assert.ok(fallback.equals(data));
      assert.notEqual(fallback.buffer, small.buffer);
      const bad = Buffer.from(z);
      for (let i = 64; i < bad.length - 64; i += 997) bad[i] ^= 0x55;
      await assert.rejects(decompressBuffer(bad, 'zstd', scratch.get(data.length)), Error);
    } finally {
      t.cleanup();
    }
  });

  it('fails on corrupted data for every codec', async function () {
    if (!have('xz') || !have('zstd') || !have('bzip2')) this.skip();
    for (const z of [hostCompress('xz', data), hostCompress('zstd', data), hostCompress('bzip2', data), gzipSync(data)]) {
      const bad = Buffer.from(z);
      for (let i = 64; i < bad.length - 64; i += 997) bad[i] ^= 0x55;
      await assert.rejects(decompressBuffer(bad), Error, `codec ${detectCompression(z)}`);
    }
  });

  it('passes on an input that fails while the decoder is still loading, instead of throwing it', async () => {
    for (const kind of ['xz', 'zstd', 'gzip'] as const) {
      const input = new PassThrough();
      const pending = decompressStream(input, kind);
      input.destroy(new Error(`boom ${kind}`)); // before decompressStream got to attach to it
      const out = await pending;
      await assert.rejects(collect(out), new RegExp(`boom ${kind}`));
    }
  });
});
