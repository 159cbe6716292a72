/**
 * isatty without loading node:tty (which pulls in node:net: ~10 ms at
 * start-up, a tenth of the run path's budget). Falls back to node:tty.
 */
import { createRequire } from 'node:module';

export function isatty(fd: number): boolean {
  try {
    const b = (process as unknown as { binding(n: string): { isTTY(fd: number): boolean } }).binding('tty_wrap');
    return b.isTTY(fd);
  } catch {
    return (createRequire(import.meta.url)('node:tty') as typeof import('node:tty')).isatty(fd);
  }
}
