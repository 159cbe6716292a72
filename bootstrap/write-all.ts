/**
 * write(2)/pwrite(2) until the whole buffer is written. Synchronous on
 * purpose: the bootstrap's hot paths write a chunk at a time while the event
 * loop is busy, where a thread-pool round trip per chunk costs more than
 * the write (bootstrap/archive/writer.ts).
 *
 * @example
 * writeAll(fd, chunk);          // at the file position
 * writeAll(fd, chunk, offset);  // at `offset` (pwrite)
 */
import { writeSync } from 'node:fs';

export function writeAll(fd: number, buf: Buffer, position?: number): void {
  for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, position === undefined ? null : position + done);
}
