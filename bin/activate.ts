/** `nsbox activate`: boot a tree on the first connection to a port. */
import { writeSync } from 'node:fs';
import { NsboxError, UsageError } from '../errors.js';
import { parseRunArgs, RUN_HELP } from '../runtime/args.js';
import { normalizeRunOptions } from '../runtime/options.js';
import { parseListen } from '../runtime/listen.js';

const HELP = `Usage: nsbox activate --listen [ADDR:]PORT[,…] [--idle-stop SECONDS] [RUN OPTIONS] -D DIR [INIT ARGS]

Socket activation without a host systemd: nsbox listens, boots the tree's
systemd on the first connection (which is not lost: the container's .socket
unit takes the listening socket over and serves it), serves later connections
from the same container, and with --idle-stop powers it off after that many
seconds without a connection, then listens again. The tree needs systemd and
a .socket unit listening on the same address (e.g. ssh.socket).

  --listen [ADDR:]PORT[,…]   sockets to listen on (repeatable); PORT alone = every address
  --idle-stop SECONDS        power off after SECONDS idle (default: never)

Run options as for \`nsbox run\` (console defaults to passive):
${RUN_HELP.split('\n').slice(5).join('\n')}`;

export async function main(argv: string[]): Promise<number> {
  try {
    const parsed = parseRunArgs(argv, {
      listen: { key: 'listen', value: true, repeat: true },
      'idle-stop': { key: 'idleStop', value: true },
    });
    if (parsed.help) { writeSync(1, HELP); return 0; }
    const rest = parsed.rest ?? {};
    const specs = ((rest.listen as string[] | undefined) ?? []).flatMap(parseListen);
    if (!specs.length) throw new UsageError('activate needs at least one --listen [ADDR:]PORT', { hint: 'e.g. nsbox activate --listen 2222 -D /srv/deb' });
    const idleRaw = rest.idleStop as string | undefined;
    const idle = idleRaw === undefined ? 0 : Number(idleRaw);
    if (!Number.isFinite(idle) || idle < 0 || (idleRaw !== undefined && !/^\d+(\.\d+)?$/.test(idleRaw))) {
      throw new UsageError(`invalid --idle-stop \`${idleRaw}\``, { hint: 'give seconds, e.g. --idle-stop 300' });
    }
    const { rest: _ignored, ...input } = parsed;
    const opts = normalizeRunOptions({ console: 'passive', ...input, boot: true }, { isTTY: false });
    const { activate } = await import('../runtime/activate.js');
    const ac = new AbortController();
    const stop = () => ac.abort();
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, stop);
    return await activate({ run: opts, listen: specs, idleStopSeconds: idle, signal: ac.signal, log: opts.quiet ? () => {} : undefined });
  } catch (e) {
    if (e instanceof NsboxError && ![126, 127].includes(e.exitCode)) Object.defineProperty(e, 'exitCode', { value: 125 });
    throw e;
  }
}
