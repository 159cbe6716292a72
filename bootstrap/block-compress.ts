/**
 * Parallel and reproducible compression of exports. The input is cut into
 * blocks of a fixed size, so the output depends on its bytes alone (never on
 * how the stream was chunked, nor on how many threads there were); worker
 * threads compress the blocks, which are written in order.
 *
 * - zstd: one frame per block (a zstd stream is a sequence of frames, which
 *   every decoder reads on; frames of 4 MiB come out 2% larger than one
 *   frame, about what `tar --zstd` writes, and compress faster than 8 MiB
 *   ones here: a block and its tables stay in the cache).
 * - gzip: a single gzip member whose deflate stream is the blocks' raw
 *   deflate output, each block primed with the 32 KiB before it and ended by
 *   a sync flush, then an empty final block (the way pigz writes gzip); each
 *   worker computes its block's CRC-32, combined here in order.
 *
 * One core would compress about as fast as before; on two or more the
 * compressor no longer holds up the tar writer (nor the tar writer it).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';

export type BlockKind = 'gzip' | 'zstd';

const BLOCK: Record<BlockKind, number> = { gzip: 1 << 20, zstd: 4 << 20 };
const WINDOW = 32 << 10;

// Runs in each worker: compresses one block (and for gzip sums it), hands both buffers back.
// zstd compresses into one output buffer kept for the worker's life (a fresh one per block
// cost more in page faults than the copy out of it).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
let cctx, dest;
if (workerData.kind === 'zstd') {
  const z = require(workerData.zstdBinding);
  cctx = new z.CCtx();
  cctx.setParameter(z.CParameter.compressionLevel, 3);
  cctx.setParameter(z.CParameter.checksumFlag, 1);
  dest = Buffer.allocUnsafeSlow(z.compressBound(workerData.blockSize));
}
parentPort.on('message', ({ id, block, length, dict }) => {
  const input = new Uint8Array(block, 0, length);
  let out, crc = 0;
  if (cctx) out = dest.buffer.slice(0, cctx.compress2(dest, input));
  else {
    const z = zlib.deflateRawSync(input, { level: 6, finishFlush: zlib.constants.Z_SYNC_FLUSH, ...(dict ? { dictionary: Buffer.from(dict) } : {}) });
    out = z.byteOffset === 0 && z.byteLength === z.buffer.byteLength ? z.buffer : z.buffer.slice(z.byteOffset, z.byteOffset + z.byteLength);
    crc = zlib.crc32(input);
  }
  parentPort.postMessage({ id, out, crc, block }, [out, block]);
});
`;

interface Done { out: Buffer; crc: number; length: number }
interface Pending { length: number; resolve: (d: Done) => void; reject: (e: Error) => void }

/** A Transform compressing with `kind` on worker threads; see the module comment for the format. */
export class BlockCompressor extends Transform {
  readonly #kind: BlockKind;
  readonly #size: number;
  readonly #threads: number;
  readonly #zstdBinding: string | undefined;
  #workers: Worker[] = [];
  #free: ArrayBuffer[] = [];
  #cur: Buffer | undefined;
  #fill = 0;
  /** gzip: the last 32 KiB of the block sent before, the next block's dictionary. */
  #prevTail: ArrayBuffer | undefined;
  #next = 0;
  #waiting = new Map<number, Pending>();
  /** One per block sent, in order. */
  #results: Promise<Done>[] = [];
  #failed: Error | undefined;
  #crc = 0;
  #total = 0;

  constructor(kind: BlockKind, opts: { threads?: number } = {}) {
    super();
    this.#kind = kind;
    this.#size = BLOCK[kind];
    this.#threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), 8));
    // resolved here, where a missing addon fails the export before it starts; the workers load it
    this.#zstdBinding = kind === 'zstd' ? createRequire(import.meta.url).resolve('zstd-napi/binding') : undefined;
  }

  #start(): void {
    if (this.#kind === 'gzip') this.push(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])); // no name, mtime 0, OS Unix
    for (let i = 0; i < this.#threads; i++) {
      const w = new Worker(WORKER, { eval: true, workerData: { kind: this.#kind, zstdBinding: this.#zstdBinding, blockSize: this.#size } });
      w.on('message', (m: { id: number; out: ArrayBuffer; crc: number; block: ArrayBuffer }) => {
        const job = this.#waiting.get(m.id)!;
        this.#waiting.delete(m.id);
        this.#free.push(m.block);
        job.resolve({ out: Buffer.from(m.out), crc: m.crc, length: job.length });
      });
      w.on('error', (e) => this.#fail(e));
      w.on('exit', (code) => { if (code !== 0 && !this.destroyed) this.#fail(new Error(`a compression thread exited with status ${code}`)); });
      this.#workers.push(w);
    }
  }

  #fail(e: Error): void {
    this.#failed ??= e;
    for (const job of this.#waiting.values()) job.reject(e);
    this.#waiting.clear();
  }

  /** Sends the block being filled (its first `#fill` bytes) to a worker. */
  #dispatch(): void {
    if (this.#next === 0) this.#start();
    const block = this.#cur!, length = this.#fill;
    const id = this.#next++;
    const dict = this.#prevTail;
    // copied (ArrayBuffer.slice): the block itself goes to the worker
    if (this.#kind === 'gzip') this.#prevTail = block.buffer.slice(block.byteOffset + Math.max(0, length - WINDOW), block.byteOffset + length) as ArrayBuffer;
    const result = new Promise<Done>((resolve, reject) => this.#waiting.set(id, { length, resolve, reject }));
    result.catch(() => { /* seen when drained: a failure before then is not an unhandled one */ });
    this.#results.push(result);
    const worker = this.#workers[id % this.#workers.length];
    worker.postMessage({ id, block: block.buffer, length, dict }, [block.buffer as ArrayBuffer, ...(dict ? [dict] : [])]);
    this.#cur = undefined;
    this.#fill = 0;
  }

  /** Writes finished blocks in order while at least `keep` are still in flight. */
  async #drain(keep: number): Promise<void> {
    while (this.#results.length > keep) {
      const d = await this.#results.shift()!;
      this.#total += d.length;
      if (this.#kind === 'gzip') this.#crc = crc32Combine(this.#crc, d.crc, d.length);
      this.push(d.out);
    }
    if (this.#failed) throw this.#failed;
  }

  /**
   * A block-sized buffer for a writer to fill and hand back whole (tar-pack's
   * `buffers`): it goes to a worker without a copy, and comes back for reuse.
   */
  readonly takeBuffer = (): Buffer => {
    const ab = this.#free.pop();
    return ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(this.#size);
  };

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#failed) { cb(this.#failed); return; }
    if (this.#fill === 0 && chunk.length === this.#size && chunk.byteOffset === 0 && chunk.buffer.byteLength === this.#size) {
      this.#cur = chunk; // a whole block of its own (takeBuffer's): sent as it is
      this.#fill = chunk.length;
      this.#dispatch();
    } else {
      for (let off = 0; off < chunk.length;) {
        this.#cur ??= this.takeBuffer();
        const n = chunk.copy(this.#cur, this.#fill, off);
        this.#fill += n;
        off += n;
        if (this.#fill === this.#size) this.#dispatch();
      }
    }
    this.#drain(this.#threads * 2).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#fill > 0 || this.#next === 0) {
      this.#cur ??= this.takeBuffer();
      this.#dispatch(); // also an empty input gets its one (empty) frame or block
    }
    this.#drain(0).then(() => {
      if (this.#kind === 'gzip') {
        const end = Buffer.alloc(10);
        end[0] = 0x03; // an empty final block of fixed codes, after the last sync flush
        end.writeUInt32LE(this.#crc >>> 0, 2);
        end.writeUInt32LE(this.#total % 2 ** 32, 6);
        this.push(end);
      }
      this.#stop();
      cb();
    }, (e: Error) => { this.#stop(); cb(e); });
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#stop();
    cb(err);
  }

  #stop(): void {
    for (const w of this.#workers) {
      w.removeAllListeners('exit'); // terminate() ends it with status 1: not a failure
      void w.terminate();
    }
    this.#workers = [];
  }
}

// CRC-32 arithmetic on reflected polynomials modulo CRC-32's (bit 31 is x^0), to join two
// blocks' CRCs: crc(A‖B) = crc(A)·x^(8·|B|) + crc(B).
const POLY = 0xedb88320;

function mulMod(a: number, b: number): number {
  let product = 0;
  for (let bit = 0x80000000; bit; bit >>>= 1) {
    if (a & bit) product ^= b;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return product >>> 0;
}

/** x^(2^k) mod P for k = 0..63: squares of x (0x40000000 is x^1). */
const X_POW2 = (() => {
  const t = [0x40000000];
  for (let k = 1; k < 64; k++) t.push(mulMod(t[k - 1], t[k - 1]));
  return t;
})();

/** The CRC-32 of A‖B from crc(A), crc(B) and |B| in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  let shift = 0x80000000; // x^0
  for (let k = 3, n = lengthB; n > 0; k++, n = Math.floor(n / 2)) if (n % 2) shift = mulMod(shift, X_POW2[k]);
  return (mulMod(shift, crcA) ^ crcB) >>> 0;
}
