/**
 * Streaming compressors for exported archives, with settings fixed so that
 * the same input gives the same bytes on every run (what mmdebstrap gets
 * from the compressors' defaults): gzip level 6 through zlib (no file name,
 * mtime 0, OS byte "Unix"), xz preset 6 single-threaded with a CRC64 check
 * (xz's own defaults, the same bytes as `xz -6 -T1`), zstd level 3 with a
 * checksum, single-threaded.
 *
 * zlib and liblzma work on libuv's thread pool, beside the tar writer;
 * zstd-napi compresses on the calling thread. zstd's own workers do not
 * help through zstd-napi (it spins while they work), and a worker thread
 * of our own cost ~0.4 s more CPU on a minbase tree than it could save on
 * two cores (measured here): zstd stays on the main thread.
 */
import { PassThrough, type Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Compression } from './decompress.js';

/**
 * A Transform that compresses with `kind` ('none' passes data through).
 *
 * @example
 * await pipeline(packTree(dir).stream, await createCompressor('zstd'), createWriteStream('tree.tar.zst'));
 */
export async function createCompressor(kind: Exclude<Compression, 'bzip2'>): Promise<Transform> {
  switch (kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return createGzip({ level: 6, chunkSize: 1 << 18 });
    case 'xz': {
      const { createXz } = await import('node-liblzma');
      return createXz({ preset: 6, threads: 1, check: 4 /* LZMA_CHECK_CRC64 */, chunkSize: 1 << 18 }) as unknown as Transform;
    }
    case 'zstd': {
      const { CompressStream } = await import('zstd-napi');
      return new CompressStream({ compressionLevel: 3, checksumFlag: true });
    }
  }
}
