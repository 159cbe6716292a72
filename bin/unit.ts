/** `nsbox unit`: systemd units that run a tree as a service. */
import { mkdirSync, writeFileSync, writeSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { NsboxError, UsageError } from '../errors.js';
import { parseRunArgs, RUN_HELP } from '../runtime/args.js';
import { normalizeRunOptions } from '../runtime/options.js';
import { parseListen } from '../runtime/listen.js';
import { renderUnits, unitNames } from '../runtime/unit.js';

const HELP = `Usage: nsbox unit NAME -D DIR [--socket [ADDR:]PORT[,…]] [--install [--unit-dir DIR]] [RUN OPTIONS] [INIT ARGS]

Print (or with --install write) nsbox-NAME.service, and with --socket
nsbox-NAME.socket, for a host systemd: the service boots DIR with
\`nsbox run -b\` as Type=notify (ready when the container's systemd is),
KillMode=mixed, Delegate=yes; stopping it powers the container off cleanly;
a reboot inside restarts the container in place. With --socket the
container starts on the first connection and takes the sockets over.

  --socket [ADDR:]PORT[,…]  add a .socket unit (repeatable)
  --install                 write the units (default dir /etc/systemd/system)
  --unit-dir DIR            where --install writes

Run options as for \`nsbox run\`:
${RUN_HELP.split('\n').slice(5).join('\n')}`;

export async function main(argv: string[]): Promise<number> {
  try {
    const name = argv[0];
    if (!name || name === '-h' || name === '--help') {
      if (name) { writeSync(1, HELP); return 0; }
      throw new UsageError('unit needs a NAME', { hint: 'nsbox unit NAME -D DIR' });
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) throw new UsageError(`invalid unit name \`${name}\``, { hint: 'letters, digits, "-", "_" and "."' });
    const parsed = parseRunArgs(argv.slice(1), {
      socket: { key: 'socket', value: true, repeat: true },
      install: { key: 'install', value: false },
      'unit-dir': { key: 'unitDir', value: true },
    });
    if (parsed.help) { writeSync(1, HELP); return 0; }
    const rest = parsed.rest ?? {};
    if (!parsed.directory) throw new UsageError('unit needs the tree: -D DIR', { hint: `nsbox unit ${name} -D /srv/tree` });
    const { rest: _r, ...input } = parsed;
    const opts = normalizeRunOptions({ ...input, machine: input.machine ?? name, console: 'passive', boot: true }, { isTTY: false });
    const socket = ((rest.socket as string[] | undefined) ?? []).flatMap(parseListen);
    // ExecStart: this nsbox, the same run options, passive console, boot.
    const script = realpathSync(process.argv[1]);
    const runArgs = argv.slice(1).filter((a, i, all) => {
      const prev = all[i - 1];
      return !['--install'].includes(a) && !a.startsWith('--socket') && !a.startsWith('--unit-dir') && prev !== '--socket' && prev !== '--unit-dir';
    });
    const execStart = [process.execPath, script, 'run', '-b', '-M', opts.machine, '--console=passive', '-D', opts.directory,
      ...runArgs.filter((a, i, all) => !['-D', '--directory'].includes(a) && !['-D', '--directory'].includes(all[i - 1] ?? '') && !a.startsWith('--directory=') && !/^-D./.test(a) && !['-b', '--boot'].includes(a))];
    const units = renderUnits({ name, execStart, directory: opts.directory, socket: socket.length ? socket : undefined });
    const names = unitNames(name);
    if (rest.install) {
      const dir = (rest.unitDir as string | undefined) ?? '/etc/systemd/system';
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, names.service), units.service);
      if (units.socket) writeFileSync(join(dir, names.socket), units.socket);
      writeSync(1, `Wrote ${join(dir, names.service)}${units.socket ? ` and ${join(dir, names.socket)}` : ''}.\n` +
        `Start it: systemctl daemon-reload && systemctl enable --now ${units.socket ? names.socket : names.service}\n`);
      return 0;
    }
    writeSync(1, `# ${names.service}\n${units.service}${units.socket ? `\n# ${names.socket}\n${units.socket}` : ''}`);
    return 0;
  } catch (e) {
    if (e instanceof NsboxError && e.exitCode !== 2) Object.defineProperty(e, 'exitCode', { value: e.exitCode });
    throw e;
  }
}
