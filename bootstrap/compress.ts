/**
 * Streaming compressors for exported archives, with settings fixed so that
 * the same input gives the same bytes on every run (what mmdebstrap gets
 * from the compressors' defaults): gzip level 6 through zlib (no file name,
 * mtime 0, OS byte "Unix"), xz preset 6 single-threaded with a CRC64 check
 * (xz's own defaults, the same bytes as `xz -6 -T1`), zstd level 3 with a
 * checksum, single-threaded.
 *
 * zlib and liblzma already work on libuv's thread pool, beside the tar
 * writer. zstd-napi compresses on the calling thread (and with zstd's own
 * workers it spins while they work), so zstd runs in a worker thread:
 * chunks are handed over (transferred, not copied) and come back
 * compressed, while the main thread reads the next files.
 */
import { createRequire } from 'node:module';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
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
    case 'zstd':
      return new ZstdWorkerStream();
  }
}

/** The worker's side: one zstd-napi CompressStream, fed by messages. CommonJS (an eval'd worker). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { CompressStream } = require(workerData.zstd);
const z = new CompressStream({ compressionLevel: 3, checksumFlag: true });
z.on('data', (c) => {
  const own = c.byteOffset === 0 && c.byteLength === c.buffer.byteLength ? c : Buffer.from(c);
  parentPort.postMessage({ data: own }, [own.buffer]);
});
z.on('end', () => parentPort.postMessage({ end: true }));
z.on('error', (e) => parentPort.postMessage({ error: String(e && e.message || e) }));
parentPort.on('message', (m) => {
  if (m.end) z.end();
  else z.write(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength), () => parentPort.postMessage({ ack: true }));
});
`;

/** Bytes handed to the worker and not yet taken: the writer waits beyond this. */
const IN_FLIGHT = 8 << 20;

/** zstd in a worker thread, as a Transform (see the module comment). */
class ZstdWorkerStream extends Transform {
  #worker: Worker;
  #inFlight = 0;
  #sizes: number[] = [];
  #waiting?: TransformCallback;
  #flushed?: TransformCallback;
  #failed?: Error;

  constructor() {
    super();
    const zstd = createRequire(import.meta.url).resolve('zstd-napi');
    this.#worker = new Worker(WORKER, { eval: true, workerData: { zstd } });
    this.#worker.on('message', (m: { data?: Uint8Array; ack?: true; end?: true; error?: string }) => {
      if (m.data) this.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
      else if (m.ack) {
        this.#inFlight -= this.#sizes.shift() ?? 0;
        const cb = this.#waiting;
        if (cb && this.#inFlight < IN_FLIGHT) { this.#waiting = undefined; cb(); }
      } else if (m.end) {
        void this.#worker.terminate();
        this.#flushed?.();
      } else if (m.error !== undefined) this.#fail(new Error(`zstd: ${m.error}`));
    });
    this.#worker.on('error', (e) => this.#fail(e));
  }

  #fail(e: Error): void {
    this.#failed = e;
    void this.#worker.terminate();
    const cb = this.#waiting ?? this.#flushed;
    this.#waiting = this.#flushed = undefined;
    if (cb) cb(e);
    else this.destroy(e);
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.#failed) return cb(this.#failed);
    // the chunk's memory moves to the worker when it owns all of it (tar-pack's chunks do)
    const own = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && !(chunk.buffer instanceof SharedArrayBuffer);
    const data = own ? chunk : Buffer.from(chunk);
    this.#inFlight += data.length;
    this.#sizes.push(data.length);
    this.#worker.postMessage({ chunk: data }, [data.buffer as ArrayBuffer]);
    if (this.#inFlight < IN_FLIGHT) cb();
    else this.#waiting = cb;
  }

  override _flush(cb: TransformCallback): void {
    if (this.#failed) return cb(this.#failed);
    this.#flushed = cb;
    this.#worker.postMessage({ end: true });
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    void this.#worker.terminate();
    cb(err);
  }
}
