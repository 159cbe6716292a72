/**
 * Streaming compressors for exported archives, with settings fixed so that
 * the same input gives the same bytes on every run and machine: gzip level 6
 * and zstd level 3 with a checksum, both cut into fixed blocks compressed on
 * worker threads (./block-compress.ts: a single gzip member as pigz writes
 * it, zstd frames of 4 MiB); xz preset 6 single-threaded with a CRC64 check
 * on libuv's thread pool (the same bytes as `xz -6 -T1`).
 */
import { PassThrough, type Transform } from 'node:stream';
import { BlockCompressor } from './block-compress.js';
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
      return new BlockCompressor('gzip');
    case 'xz': {
      const { createXz } = await import('node-liblzma');
      return createXz({ preset: 6, threads: 1, check: 4 /* LZMA_CHECK_CRC64 */, chunkSize: 1 << 18 }) as unknown as Transform;
    }
    case 'zstd':
      return new BlockCompressor('zstd');
  }
}

/** Buffers for packTree's `buffers` that `compressor` takes without a copy, where it has them. */
export function compressorBuffers(compressor: Transform): (() => Buffer) | undefined {
  return compressor instanceof BlockCompressor ? compressor.takeBuffer : undefined;
}
