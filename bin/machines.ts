/** `nsbox list | stop | shell | exec`: control running machines by name. */
import { writeSync } from 'node:fs';
import { UsageError } from '../errors.js';
import * as registry from '../runtime/registry.js';
import { listImages } from '../runtime/images.js';

const HELP: Record<string, string> = {
  list: 'Usage: nsbox list [--all] [--json]\n\nList running machines: name, leader pid, tree, booted or not, uptime.\n--all also lists the machine images (directories in /var/lib/machines and the rest of\nsystemd\'s image search path), which `nsbox run -M NAME` runs, as machinectl list-images does.\n',
  stop: 'Usage: nsbox stop NAME [--timeout SECONDS]\n\nPower off a booted machine cleanly (SIGRTMIN+3 to its init), or send SIGTERM to a\none-shot container; SIGKILL after the timeout (default 30 s).\n',
  shell: 'Usage: nsbox shell NAME\n\nOpen root\'s login shell inside a running machine.\n',
  exec: 'Usage: nsbox exec NAME [--] COMMAND [ARGS...]\n\nRun a command inside a running machine\'s namespaces; its exit status is nsbox\'s.\n',
};

function uptime(started: string): string {
  let s = Math.max(0, Math.round((Date.now() - Date.parse(started)) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (d ? `${d}d ` : '') + (h ? `${h}h ` : '') + (m ? `${m}min ` : '') + `${s}s`;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  if (args.includes('-h') || args.includes('--help')) { writeSync(1, HELP[cmd]); return 0; }
  switch (cmd) {
    case 'list': {
      const json = args.includes('--json');
      const all = args.includes('--all') || args.includes('-a');
      const bad = args.find((a) => a !== '--json' && a !== '--all' && a !== '-a');
      if (bad) throw new UsageError(`unknown argument \`${bad}\` for list`, { hint: 'nsbox list [--all] [--json]' });
      const machines = registry.list();
      const running = machines.map((m) => ({ name: m.name, leader: m.leader, directory: m.directory, booted: m.boot, started: m.started, uptimeSeconds: Math.round((Date.now() - Date.parse(m.started)) / 1000), uuid: m.uuid }));
      const images = all ? listImages().map((i) => ({ ...i, running: machines.some((m) => m.directory === i.path) })) : [];
      if (json) {
        writeSync(1, JSON.stringify(all ? { machines: running, images } : running, null, 2) + '\n');
        return 0;
      }
      const rows = [['NAME', 'LEADER', 'BOOTED', 'UPTIME', 'TREE'], ...machines.map((m) => [m.name, String(m.leader), m.boot ? 'yes' : 'no', uptime(m.started), m.directory])];
      const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      writeSync(1, rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ')).join('\n') + '\n');
      writeSync(1, `\n${machines.length} machine${machines.length === 1 ? '' : 's'} listed.\n`);
      if (all) {
        const irows = [['IMAGE', 'STATE', 'MODIFIED', 'PATH'], ...images.map((i) => [i.name, i.running ? 'running' : 'stopped', i.modified.replace(/\.\d+Z$/, 'Z'), i.path])];
        const iw = irows[0].map((_, i) => Math.max(...irows.map((r) => r[i].length)));
        writeSync(1, '\n' + irows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(iw[i]))).join('  ')).join('\n') + '\n');
        writeSync(1, `\n${images.length} image${images.length === 1 ? '' : 's'} listed.\n`);
      }
      return 0;
    }
    case 'stop': {
      const name = args.find((a) => !a.startsWith('-'));
      if (!name) throw new UsageError('stop needs a machine NAME', { hint: 'see running machines with `nsbox list`' });
      const ti = args.indexOf('--timeout');
      const timeout = ti >= 0 ? Number(args[ti + 1]) : 30;
      if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`invalid --timeout \`${args[ti + 1]}\``, { hint: 'give seconds, e.g. --timeout 10' });
      const m = registry.find(name);
      const { stopMachine } = await import('../runtime/stop.js');
      await stopMachine(m, timeout * 1000);
      return 0;
    }
    case 'shell':
    case 'exec': {
      let rest = args;
      const name = rest[0];
      if (!name || name.startsWith('-')) throw new UsageError(`${cmd} needs a machine NAME`, { hint: 'see running machines with `nsbox list`' });
      rest = rest.slice(1);
      if (rest[0] === '--') rest = rest.slice(1);
      if (cmd === 'exec' && rest.length === 0) throw new UsageError('exec needs a COMMAND', { hint: `nsbox exec ${name} -- COMMAND [ARGS...]` });
      const m = registry.find(name);
      const { enterMachine } = await import('../runtime/enter.js');
      const { loginShell } = await import('../runtime/stop.js');
      const command = cmd === 'shell' ? [await loginShell(m), '-l'] : rest;
      return enterMachine(m, { command });
    }
  }
  throw new UsageError(`unknown command \`${cmd}\``);
}
