/**
 * Streaming decompressors, chosen by name (file extension, `Compression`)
 * or by the first bytes of the data: xz (node-liblzma, concatenated streams
 * included), zstd (zstd-napi; fzstd as a pure-JS fallback that announces
 * itself), gzip (zlib), bzip2 (./bzip2.ts), and none.
 * Native modules are imported only when their format is met.
 */
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync } from 'node:zlib';
import { NsboxError } from '../errors.js';
import { createBunzip2 } from './bzip2.js';

export type Compression = 'xz' | 'zstd' | 'gzip' | 'bzip2' | 'none';

/**
 * The compression a file name implies (`Packages.xz`, `data.tar.zst`,
 * `primary.xml.gz`, `filelists.xml.bz2`); `none` for anything else.
 *
 * @example
 * compressionFromName('data.tar.xz') // 'xz'
 */
export function compressionFromName(name: string): Compression {
  const m = /\.(xz|lzma|zst|zstd|gz|bz2)$/.exec(name);
  switch (m?.[1]) {
    case 'xz':
    case 'lzma':
      return 'xz';
    case 'zst':
    case 'zstd':
      return 'zstd';
    case 'gz':
      return 'gzip';
    case 'bz2':
      return 'bzip2';
    default:
      return 'none';
  }
}

/**
 * The compression the magic bytes say; `none` when none matches.
 *
 * @example
 * detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])) // 'zstd'
 */
export function detectCompression(head: Uint8Array): Compression {
  const b = head;
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) return 'xz';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68 && b[3] >= 0x31 && b[3] <= 0x39) return 'bzip2';
  return 'none';
}

/** Receives the one-time notice that a fallback decoder is in use. */
export type WarningSink = (message: string) => void;

let warnSink: WarningSink = (m) => process.stderr.write(`nsbox: warning: ${m}\n`);
let zstdNative: Promise<typeof import('zstd-napi') | undefined> | undefined;

/** Routes fallback notices (default: a line on stderr), e.g. into progress log events. */
export function setDecompressWarningSink(sink: WarningSink): void {
  warnSink = sink;
}

/**
 * A Transform that decompresses `kind`. 'none' passes data through.
 *
 * @example
 * await pipeline(createReadStream('Packages.xz'), await createDecompressor('xz'), parser);
 */
export async function createDecompressor(kind: Compression, opts: { forceFallback?: boolean } = {}): Promise<Transform> {
  switch (kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return createGunzip();
    case 'bzip2':
      return createBunzip2();
    case 'xz': {
      const { createUnxz } = await import('node-liblzma');
      // Bigger output chunks than the 16 KiB default: fewer thread-pool round trips.
      return createUnxz({ chunkSize: 1 << 18 }) as unknown as Transform;
    }
    case 'zstd': {
      const native = opts.forceFallback ? undefined : await loadZstdNative();
      if (native) return new native.DecompressStream();
      return await createFzstd();
    }
    default:
      throw new NsboxError(`cannot decompress: unknown compression \`${String(kind)}\``);
  }
}

let zstdContext: Promise<{ decompress(dst: Uint8Array, src: Uint8Array): number } | undefined> | undefined;

/** Decompresses all of `src` into `dst`; undefined when it does not fit (or zstd-napi is missing). */
async function zstdIntoBuffer(dst: Buffer, src: Buffer): Promise<number | undefined> {
  zstdContext ??= import('zstd-napi/binding.js').then((m) => new ((m as { default?: typeof import('zstd-napi/binding.js') }).default ?? m).DCtx(), () => undefined);
  const ctx = await zstdContext;
  try {
    return ctx?.decompress(dst, src);
  } catch {
    return undefined; // too small a buffer, or a damaged frame: the caller's other path reports it
  }
}

function loadZstdNative(): Promise<typeof import('zstd-napi') | undefined> {
  zstdNative ??= import('zstd-napi').then(
    (m) => (m as { default?: typeof import('zstd-napi') }).default ?? m,
    (err: Error) => {
      warnSink(`zstd-napi is not usable (${err.message.split('\n')[0]}); using the slower pure-JS fzstd decoder`);
      return undefined;
    },
  );
  return zstdNative;
}

async function createFzstd(): Promise<Transform> {
  const { Decompress } = await import('fzstd');
  let out: Transform;
  const dec = new Decompress((data) => {
    if (data.length) out.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
  out = new Transform({
    transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
      try {
        dec.push(chunk);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        dec.push(new Uint8Array(0), true);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  return out;
}

/**
 * A Transform that looks at the first bytes, picks the decoder by magic and
 * feeds it (uncompressed data passes through).
 *
 * @example
 * createReadStream(path).pipe(autoDecompressor()).pipe(parser);
 */
export function autoDecompressor(): Transform {
  let inner: Transform | undefined;
  let head: Buffer[] = [];
  let headLen = 0;
  let innerEnded: Promise<void> | undefined;
  const start = async (self: Transform): Promise<void> => {
    const first = Buffer.concat(head);
    head = [];
    inner = await createDecompressor(detectCompression(first));
    // Backpressure: the outer transform's callback waits for the inner
    // decoder's write callback, and Node holds that callback while the outer
    // readable buffer is full.
    inner.on('data', (c: Buffer) => self.push(c));
    innerEnded = new Promise((res, rej) => {
      inner!.on('end', res);
      inner!.on('error', rej);
    });
    innerEnded.catch(() => {});
    await feed(inner, first);
  };
  const t = new Transform({
    transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
      if (inner) {
        feed(inner, chunk).then(() => cb(), cb);
        return;
      }
      head.push(chunk);
      headLen += chunk.length;
      if (headLen < 6) return cb();
      start(this).then(() => cb(), cb);
    },
    flush(cb: TransformCallback) {
      const finish = async () => {
        if (!inner) await start(this);
        inner!.end();
        await innerEnded;
      };
      finish().then(() => cb(), cb);
    },
  });
  return t;
}

function feed(inner: Transform, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    inner.once('error', onError);
    const ok = inner.write(chunk, (err) => {
      inner.off('error', onError);
      if (err) reject(err);
      else if (ok) resolve();
    });
    if (!ok) inner.once('drain', resolve);
  });
}

/**
 * Decompresses a whole buffer ('auto' detects by magic bytes). zstd and xz
 * go through one native call (zstd-napi, liblzma) when those load: for
 * package payloads of a few megabytes several times faster than a stream
 * (no per-chunk allocation, copying and stream machinery). `into`, a
 * buffer the caller reuses (bootstrap/scratch.ts), receives zstd's output
 * when it is big enough; the result is then a view of it.
 *
 * @example
 * const text = (await decompressBuffer(await readFile('Packages.xz'), 'auto')).toString();
 */
export async function decompressBuffer(data: Uint8Array, kind: Compression | 'auto' = 'auto', into?: Buffer): Promise<Buffer> {
  const k = kind === 'auto' ? detectCompression(data) : kind;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (k === 'none') return buf;
  if (k === 'zstd') {
    // one pass straight into the caller's (reused) buffer: no window, no chunks to join
    const n = into && (await zstdIntoBuffer(into, buf));
    if (n !== undefined) return into!.subarray(0, n);
    const native = await loadZstdNative();
    if (native) return native.decompress(buf);
  }
  if (k === 'xz') {
    const { unxzSync } = await import('node-liblzma');
    return unxzSync(buf);
  }
  if (k === 'gzip') return gunzipSync(buf); // one call on this thread: no thread-pool round trips
  const dec = await createDecompressor(k);
  const chunks: Buffer[] = [];
  dec.on('data', (c: Buffer) => chunks.push(c));
  await pipeline(async function* () {
    yield Buffer.from(data.buffer, data.byteOffset, data.length);
  }, dec);
  return Buffer.concat(chunks);
}

/**
 * Pipes `input` through the decoder for `kind` ('auto' by magic bytes) and
 * returns the decompressed readable. Errors of either side surface on it.
 *
 * @example
 * for await (const chunk of await decompressStream(createReadStream(p), 'zstd')) parser.write(chunk);
 */
export async function decompressStream(input: Readable, kind: Compression | 'auto' = 'auto'): Promise<Readable> {
  // an input that fails while the decoder loads must fail the output, not the process
  let early: Error | undefined;
  const onEarly = (e: Error) => { early ??= e; };
  input.on('error', onEarly);
  const dec = kind === 'auto' ? autoDecompressor() : await createDecompressor(kind);
  input.off('error', onEarly);
  input.on('error', (e) => dec.destroy(e));
  if (early) {
    dec.destroy(early);
    return dec;
  }
  return input.pipe(dec);
}
