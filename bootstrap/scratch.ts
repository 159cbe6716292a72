/**
 * Grow-only buffers reused across packages. Touching fresh memory costs a
 * page fault per 4 KiB page, and on the virtual machines nsbox was measured
 * on that is ~3 µs each: a new 3 MiB buffer costs ~10 ms before anything is
 * written into it, more than zstd takes to fill it. Hot paths that read or
 * decompress one package after another therefore keep one buffer each.
 * A buffer handed out stays valid until the next `get` of the same Scratch,
 * so each Scratch belongs to one sequential consumer.
 *
 * @example
 * const input = new Scratch();
 * const raw = input.get(size); // reused (and grown) by the next get
 */
export class Scratch {
  #buf: Buffer | undefined;

  /** `size` bytes of this scratch buffer (old contents undefined). */
  get(size: number): Buffer {
    if (!this.#buf || this.#buf.length < size) this.#buf = Buffer.allocUnsafeSlow(Math.max(size, 64 << 10));
    return this.#buf.subarray(0, size);
  }
}
