/**
 * Runs a command inside the tree being built, through nsbox's own runtime
 * (fresh namespaces, /proc, /sys, /dev, tmpfs /run and /tmp, the host's
 * resolv.conf for the duration of the command only). Output goes to a log
 * file; a failure becomes one NsboxError whose message ends with the last
 * lines of that log. Both engines use it (dpkg, rpm). Sync calls are
 * no-ops inside (--suppress-sync): the bootstrap syncs the tree once at the end.
 */
import { closeSync, openSync, readSync, fstatSync, writeSync } from 'node:fs';
import { AbortedError, NsboxError } from '../errors.js';
import { sourceDateEpoch } from './source-date.js';

let counter = 0;

/** Options of runInTree. */
export interface InTreeOptions {
  /** Host path of the log file (appended to). */
  logFile: string;
  /** What the command does, for the error message: "install the essential packages". */
  what: string;
  signal?: AbortSignal;
  setenv?: string[];
  /** `SRC:DST` read-only binds. */
  bindRo?: string[];
  /** Called with each complete line the command writes, while it runs (e.g. to count "Setting up"). */
  onLine?: (line: string) => void;
}

/**
 * Runs `command` in `dir` and throws when it exits non-zero.
 *
 * @example
 * await runInTree('/srv/t', ['dpkg', '--configure', '-a'], { logFile: '/srv/t/var/log/nsbox-bootstrap.log', what: 'configure packages' });
 */
export async function runInTree(dir: string, command: string[], opts: InTreeOptions): Promise<void> {
  if (opts.signal?.aborted) throw new AbortedError();
  const { run } = await import('../runtime/index.js');
  const fd = openSync(opts.logFile, 'a');
  const start = fstatSync(fd).size;
  writeSync(fd, `\n# nsbox: ${command.join(' ').slice(0, 400)}${command.join(' ').length > 400 ? ' …' : ''}\n`);
  const devnull = openSync('/dev/null', 'r');
  const tail = opts.onLine ? new LineFollower(opts.logFile, fstatSync(fd).size, opts.onLine) : undefined;
  let code: number;
  try {
    code = await run(dir, {
      command,
      machine: `nsbox-bootstrap-${process.pid}-${++counter}`,
      stdio: [devnull, fd, fd],
      setenv: ['DEBIAN_FRONTEND=noninteractive', 'DEBCONF_NONINTERACTIVE_SEEN=true', 'LC_ALL=C.UTF-8', 'LANGUAGE=C.UTF-8', 'LANG=C.UTF-8', ...sourceDate(), ...(opts.setenv ?? [])],
      bindRo: opts.bindRo,
      // durability comes from the one syncfs before the tree is marked complete (bootstrap/sync.ts),
      // not from rpm's syncfs after its transaction and sqlite's fdatasync per package
      suppressSync: true,
      signal: opts.signal,
    });
  } catch (err) {
    if (opts.signal?.aborted) throw new AbortedError('interrupted', { cause: err });
    throw err;
  } finally {
    tail?.stop();
    closeSync(devnull);
    closeSync(fd);
  }
  if (code !== 0) {
    const lines = lastLines(opts.logFile, start, 40).split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines.some((l) => /No space left on device/i.test(l))) {
      throw new NsboxError(`cannot ${opts.what}: no space left on device`, { code: 'no-space', hint: `free some space and rerun; the log is ${opts.logFile}` });
    }
    // One line: the errors the command printed last (dpkg's "dpkg: error …" lines first), then where the rest is.
    const errors = lines.filter((l) => /error|fail|cannot|unable|denied|not found|problem/i.test(l));
    const tail = (errors.length ? errors : lines).slice(-3).join(' | ');
    throw new NsboxError(`cannot ${opts.what}: \`${command.join(' ').slice(0, 60)}\` exited with status ${code}${tail ? `: ${tail}` : ''}`, {
      code: 'in-tree',
      hint: `the full log is ${opts.logFile}`,
    });
  }
}

/** SOURCE_DATE_EPOCH passed on to the tree's package scripts, as mmdebstrap passes its environment on (shadow's dates, for one, follow it). */
function sourceDate(): string[] {
  const v = sourceDateEpoch();
  return v === undefined ? [] : [`SOURCE_DATE_EPOCH=${v}`];
}

/** The last `n` non-empty lines written to `file` after byte `from`. */
export function lastLines(file: string, from: number, n: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const begin = Math.max(from, size - 16384);
    const buf = Buffer.alloc(size - begin);
    readSync(fd, buf, 0, buf.length, begin);
    return buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('# nsbox: '))
      .slice(-n)
      .join('\n');
  } finally {
    closeSync(fd);
  }
}

/** Polls a growing file and hands complete new lines to a callback. */
class LineFollower {
  #fd: number;
  #offset: number;
  #rest = '';
  #timer: NodeJS.Timeout;
  #onLine: (line: string) => void;

  constructor(file: string, offset: number, onLine: (line: string) => void) {
    this.#fd = openSync(file, 'r');
    this.#offset = offset;
    this.#onLine = onLine;
    this.#timer = setInterval(() => this.#poll(), 200);
  }

  #poll(): void {
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = readSync(this.#fd, buf, 0, buf.length, this.#offset);
      if (n <= 0) return;
      this.#offset += n;
      const lines = (this.#rest + buf.toString('utf8', 0, n)).split('\n');
      this.#rest = lines.pop() ?? '';
      for (const l of lines) this.#onLine(l);
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#poll();
    closeSync(this.#fd);
  }
}
