/**
 * Pulls exact byte counts out of a chunked stream: what the ar and cpio
 * parsers need (fixed headers, then a member body streamed as-is).
 */
export class ByteReader {
  #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  #done = false;
  /** Bytes consumed so far (offset of the next byte). */
  offset = 0;

  #truncated: (message: string) => Error;

  /** `truncated` builds the error thrown when input ends inside a member (the format's VerifyError). */
  constructor(input: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>, truncated: (message: string) => Error = (m) => new Error(m)) {
    this.#truncated = truncated;
    const a = input as AsyncIterable<Buffer>;
    this.#it = typeof a[Symbol.asyncIterator] === 'function' ? a[Symbol.asyncIterator]() : (async function* () { yield* input as Iterable<Buffer>; })();
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const r = await this.#it.next();
    if (r.done) {
      this.#done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of input (0 bytes: end). */
  async read(n: number): Promise<Buffer> {
    while (this.#buf.length < n) if (!(await this.#fill())) break;
    const out = this.#buf.subarray(0, Math.min(n, this.#buf.length));
    this.#buf = this.#buf.subarray(out.length);
    this.offset += out.length;
    return out;
  }

  /** Streams the next n bytes as chunks; throws when input ends first. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) throw this.#truncated(`unexpected end of archive (${left} bytes missing)`);
      const out = this.#buf.subarray(0, Math.min(left, this.#buf.length));
      this.#buf = this.#buf.subarray(out.length);
      this.offset += out.length;
      left -= out.length;
      yield out;
    }
  }

  /** Skips n bytes. */
  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) void _;
  }

  /** Closes the underlying iterator (stops the source). */
  async close(): Promise<void> {
    if (!this.#done) await this.#it.return?.();
    this.#done = true;
  }
}
