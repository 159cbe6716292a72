#!/usr/bin/env node
/**
 * nsbox CLI entry: picks the command from argv and lazy-imports only it, so
 * `nsbox run` loads no bootstrap, prompt or task-list code.
 */
import { writeSync } from 'node:fs';
import { formatError, NsboxError } from '../errors.js';

const COMMANDS: Record<string, () => Promise<{ main(argv: string[]): Promise<number> }>> = {
  run: () => import('./run.js'),
  bootstrap: () => import('./bootstrap.js'),
  list: () => import('./machines.js'),
  stop: () => import('./machines.js'),
  shell: () => import('./machines.js'),
  exec: () => import('./machines.js'),
  activate: () => import('./activate.js'),
  unit: () => import('./unit.js'),
  export: () => import('./export.js'),
  import: () => import('./import.js'),
};

const HELP = `Usage: nsbox COMMAND [OPTIONS]

Build distribution trees and run them in Linux namespaces.

Commands:
  bootstrap DISTRO|RECIPE DIR   build a Debian or Fedora tree (nsbox bootstrap --help)
  run [OPTIONS] [COMMAND]       run a command in a tree, or boot it with -b (nsbox run --help)
  export DIR|NAME OUT           write a tree as tar, squashfs or an OCI image (nsbox export --help)
  import FILE|oci:DIR [NAME]    unpack a tar or OCI image into /var/lib/machines/NAME
  list [--all] [--json]         list running machines (--all: and the images in /var/lib/machines)
  stop NAME                     power off (booted) or terminate a machine
  shell NAME                    open a login shell in a running machine
  exec NAME -- COMMAND          run a command in a running machine
  activate --listen PORT ...    boot a tree on the first connection to a port
  unit NAME -D DIR ...          print systemd units that run a tree as a service

Options:
  -h, --help                    show help (also: nsbox COMMAND --help)
  --version                     show the version
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    if (cmd === 'help' && rest[0]) return main([rest[0], '--help']);
    writeSync(1, HELP);
    return 0;
  }
  if (cmd === '--version') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url).pathname.replace('/dist/../', '/'), 'utf8'));
    writeSync(1, `nsbox ${pkg.version}\n`);
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    writeSync(2, `nsbox: unknown command \`${cmd}\`\n  hint: see \`nsbox --help\`\n`);
    return 2;
  }
  const mod = await load();
  return mod.main(cmd === 'list' || cmd === 'stop' || cmd === 'shell' || cmd === 'exec' ? argv : rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    // Output piped into a reader that left (`nsbox … | head`): end quietly, as SIGPIPE would.
    if ((err as NodeJS.ErrnoException)?.code === 'EPIPE') { process.exitCode = 141; return; }
    const debug = process.argv.includes('--debug') || !!process.env.NSBOX_DEBUG;
    writeSync(2, formatError(err) + '\n');
    if (debug && err instanceof Error) writeSync(2, `${err.stack}\n`);
    process.exitCode = err instanceof NsboxError ? err.exitCode : 1;
  },
);
