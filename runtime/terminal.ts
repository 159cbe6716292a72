/**
 * The user's terminal while a console is attached. nsbox copies the
 * container's bytes unchanged, so the outer terminal must not process them
 * again: fully raw (cfmakeraw) for an interactive console, raw output for a
 * read-only one — libuv's raw mode keeps OPOST/ONLCR, which turned every
 * "\n" the container wrote as "\r\n" into "\r\r\n". The settings from before
 * are put back on every exit path: close(), process exit, and the guard
 * (runtime/native/guard.c) if nsbox itself is killed.
 */
import { fstatSync, readFileSync, readlinkSync } from 'node:fs';
import { native } from './native.js';
import { isatty } from './isatty.js';
import type { ConsoleMode } from './options.js';

export interface Terminal {
  /** Guard entry that restores the saved settings if this process dies. */
  readonly guardEntry?: string;
  /** Makes the terminal raw (idempotent). */
  makeRaw(): void;
  /** Puts the saved settings back (idempotent). */
  restore(): void;
}

/**
 * Saves the settings of the terminal the console will use, or returns
 * undefined when there is none (pipe and passive consoles, no tty).
 *
 * @example
 * const term = saveTerminal('interactive'); term?.makeRaw(); … term?.restore();
 */
export function saveTerminal(mode: ConsoleMode): Terminal | undefined {
  if (mode !== 'interactive' && mode !== 'read-only') return undefined;
  // Input and output are usually the same terminal; each is saved on its own.
  const fds = (mode === 'interactive' ? [0, 1] : [1]).filter((fd) => isatty(fd));
  if (!fds.length) return undefined;
  const nat = native();
  const saved = new Map<number, Buffer>();
  for (const fd of fds) { const b = nat.ttyGet(fd); if (b) saved.set(fd, b); }
  if (!saved.size) return undefined;
  let raw = false;
  const restore = () => {
    if (!raw) return;
    raw = false;
    // Output first, then input: restoring in reverse order leaves the oldest state.
    for (const fd of [...saved.keys()].reverse()) nat.ttySet(fd, saved.get(fd)!);
    process.off('exit', restore);
  };
  const first = [...saved.keys()][0];
  const path = devicePath(first);
  return {
    guardEntry: path ? `t${path}\t${saved.get(first)!.toString('hex')}` : undefined,
    makeRaw() {
      if (raw) return;
      raw = true;
      process.on('exit', restore);
      for (const fd of saved.keys()) nat.ttyRaw(fd, mode === 'interactive' ? 'full' : 'output');
    },
    restore,
  };
}

/**
 * The terminal's own device path, for the guard (it has no controlling
 * terminal, so `/dev/tty` — what `</dev/tty` leaves in /proc — means nothing
 * to it): the path the fd was opened by, else the pty named by its number.
 */
function devicePath(fd: number): string | undefined {
  try {
    const p = readlinkSync(`/proc/self/fd/${fd}`);
    if (p.startsWith('/dev/') && p !== '/dev/tty') return p;
    let rdev = fstatSync(fd).rdev;
    if (rdev === 0x500) { // /dev/tty itself: the controlling terminal's number (stat field 7)
      const stat = readFileSync('/proc/self/stat', 'utf8');
      rdev = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4]);
    }
    const major = (rdev >> 8) & 0xfff, minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    if (major >= 136 && major <= 143) return `/dev/pts/${(major - 136) * 256 + minor}`;
  } catch { /* no path: the guard cannot restore it */ }
  return undefined;
}
