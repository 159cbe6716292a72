/**
 * Runs one command inside a tree with nsbox's runtime, for post steps:
 * stdin from a string (passed through an unlinked file in memory, so a
 * password reaches the tree's `chpasswd` without ever being written to disk
 * or to an argument list), stdout and stderr captured for the log and for
 * error messages.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, fstatSync, writeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../runtime/index.js';

/** Where scratch files go: RAM (/dev/shm) when the host has it. */
function scratchDir(): string {
  const base = existsSync('/dev/shm') && statSync('/dev/shm').isDirectory() ? '/dev/shm' : tmpdir();
  return mkdtempSync(join(base, 'nsbox-post-'));
}

/** An fd open on an already-unlinked file: `content` to read, or empty to write. */
function anonymousFile(content?: string): number {
  const dir = scratchDir();
  try {
    const path = join(dir, 'f');
    const fd = openSync(path, 'w+', 0o600);
    if (content !== undefined) {
      writeSync(fd, content, 0);
      closeSync(fd);
      return openSync(path, 'r');
    }
    return fd;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readAll(fd: number): string {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n <= 0) break;
    off += n;
  }
  return buf.subarray(0, off).toString('utf8');
}

let seq = 0;

export interface InTreeResult { code: number; output: string }

/** The environment post-step commands get. */
export const POST_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LC_ALL: 'C',
  DEBIAN_FRONTEND: 'noninteractive',
  SYSTEMD_OFFLINE: '1',
};

/**
 * Runs `argv` as root inside `dir` and returns its exit status and its
 * combined output. Never throws for a non-zero exit.
 *
 * @example
 * const { code, output } = await inTree('/srv/t', ['chpasswd'], { input: 'root:secret\n' });
 */
export async function inTree(dir: string, argv: string[], opts: { input?: string; signal?: AbortSignal; hostname?: string } = {}): Promise<InTreeResult> {
  const stdin = opts.input === undefined ? openSync('/dev/null', 'r') : anonymousFile(opts.input);
  const out = anonymousFile();
  try {
    const code = await run(dir, {
      command: argv,
      machine: `nsbox-post-${process.pid}-${++seq}`,
      hostname: opts.hostname,
      stdio: [stdin, out, out],
      setenv: POST_ENV,
      signal: opts.signal,
    });
    return { code, output: readAll(out) };
  } finally {
    closeSync(stdin);
    closeSync(out);
  }
}
