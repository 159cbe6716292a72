/**
 * Entering a running machine (`nsbox exec`, `nsbox shell`): the native
 * helper joins the leader's namespaces (mount and pid included — never from
 * Node) and forks into its pid namespace; nsbox relays the console and the
 * exit status like `run` does.
 */
import { existsSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NsboxError, SetupError } from '../errors.js';
import { DEFAULT_CAPS } from './caps.js';
import type { ContainerPlan } from './plan.js';
import { encodePlan } from './wire.js';
import { native, waitExit } from './native.js';
import type { MachineEntry } from './registry.js';
import { isatty } from './isatty.js';

export interface EnterOptions {
  command: string[];
  env?: string[];
  /** Use a pty proxied to this terminal (default: when stdin and stdout are terminals). */
  tty?: boolean;
}

/** The leader's environment entries we pass on (container=, container_uuid). */
function leaderEnv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((e) => /^(container|container_uuid)=/.test(e));
  } catch { return []; }
}

/** A leaf cgroup to join: the machine's root, or init.scope when the root has controllers enabled. */
function joinCgroup(dir: string | undefined): string | undefined {
  if (!dir || !existsSync(dir)) return undefined;
  try {
    const ctl = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim();
    if (ctl && existsSync(join(dir, 'init.scope'))) return join(dir, 'init.scope');
  } catch { /* fine */ }
  return dir;
}

/** Runs a command inside a running machine and resolves with its exit status. */
export async function enterMachine(m: MachineEntry, o: EnterOptions): Promise<number> {
  if (process.getuid?.() !== 0) throw new SetupError('entering a machine needs root', { hint: 'run it with sudo' });
  const nat = native();
  const useTty = o.tty ?? (isatty(0) && isatty(1));
  let pty: { fd: number; path: string; slaveFd: number } | undefined;
  if (useTty) {
    pty = nat.openpty();
  }
  const plan: ContainerPlan = {
    tree: '', network: false, cgroupNamespace: false, cgroup: joinCgroup(m.cgroup), mounts: [], rootReadOnly: false, suppressSync: false,
    hostname: m.name, capabilities: m.capabilities ? BigInt(`0x${m.capabilities}`) : DEFAULT_CAPS, cwd: '/', consolePath: pty?.path, bringUpLoopback: false, listenFds: [],
    env: [
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'USER=root', 'LOGNAME=root',
      `TERM=${useTty ? (process.env.TERM ?? 'xterm-256color') : 'dumb'}`, ...leaderEnv(m.leader), ...(o.env ?? []),
    ],
    argv: o.command,
  };
  const started = nat.spawn(encodePlan(plan, { join: m.leader }));
  if ('error' in started) {
    if (pty) { closeSync(pty.fd); closeSync(pty.slaveFd); }
    throw new NsboxError(started.error, { code: started.code === 127 ? 'not-found' : 'setup', exitCode: started.code === 127 || started.code === 126 ? started.code : 1 });
  }
  let proxy: import('./console.js').ConsoleProxy | undefined;
  if (pty) {
    const { proxyConsole } = await import('./console.js');
    const { saveTerminal } = await import('./terminal.js');
    const fd = pty.fd;
    proxy = proxyConsole({
      mode: 'interactive', masterFd: fd, setWinsize: (r, c) => nat.setWinsize(fd, r, c), terminal: saveTerminal('interactive'),
      onKillRequest: () => { try { process.kill(started.pid, 'SIGKILL'); } catch { /* gone */ } },
    });
  }
  const forward = (sig: NodeJS.Signals) => { try { process.kill(started.pid, sig); } catch { /* gone */ } };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  try {
    const status = await waitExit(started.pid);
    if (proxy) await new Promise((r) => setTimeout(r, 30));
    const sig = status & 0x7f;
    return sig ? 128 + sig : (status >> 8) & 0xff;
  } finally {
    for (const s of signals) process.off(s, forward);
    proxy?.close();
    if (pty) { for (const fd of [pty.fd, pty.slaveFd]) { try { closeSync(fd); } catch { /* closed */ } } }
  }
}
