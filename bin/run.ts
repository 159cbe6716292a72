/** `nsbox run`: parse, validate, supervise. */
import { writeSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { parseRunArgs, RUN_HELP } from '../runtime/args.js';
import { normalizeRunOptions } from '../runtime/options.js';
import { isatty } from '../runtime/isatty.js';
import { markCacheWorthy } from './code-cache.js';

export async function main(argv: string[]): Promise<number> {
  try {
    const parsed = parseRunArgs(argv);
    if (parsed.help) { writeSync(1, RUN_HELP); return 0; }
    // Socket activation: sockets systemd passed to us go on to the container's init as fds 3….
    const listen = inheritedSockets();
    const opts = normalizeRunOptions({ ...parsed, ...listen }, { isTTY: isatty(0) && isatty(1) });
    const { runOrBoot } = await import('../runtime/run.js');
    const status = await runOrBoot(opts);
    markCacheWorthy(); // the container ran, whatever its status
    return status;
  } catch (e) {
    // nsbox's own failures exit 125 so they never look like the command's status.
    if (e instanceof NsboxError && ![126, 127].includes(e.exitCode)) Object.defineProperty(e, 'exitCode', { value: 125 });
    throw e;
  }
}

/** LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES addressed to this process (sd_listen_fds semantics). */
function inheritedSockets(): { listenFds?: number[]; listenFdNames?: string[] } {
  const n = Number(process.env.LISTEN_FDS ?? 0);
  const pid = Number(process.env.LISTEN_PID ?? 0);
  const names = process.env.LISTEN_FDNAMES;
  delete process.env.LISTEN_FDS; delete process.env.LISTEN_PID; delete process.env.LISTEN_FDNAMES;
  if (!n || pid !== process.pid) return {};
  const fds = Array.from({ length: n }, (_, i) => 3 + i);
  const list = names ? names.split(':') : [];
  return { listenFds: fds, listenFdNames: list.length === n ? list : [] };
}
