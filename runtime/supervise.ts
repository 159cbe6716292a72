/**
 * Runs a container: gathers facts, builds the plan, spawns it through the
 * native helper, then supervises — console, signals, exit status, and
 * cleanup of everything it made on the host (cgroup, registry entry).
 */
import { existsSync, writeSync, closeSync, readFileSync, statSync } from 'node:fs';
import { NsboxError, SetupError, EXIT } from '../errors.js';
import type { RunOptions } from './options.js';
import { buildPlan, type PlanFacts } from './plan.js';
import { encodePlan } from './wire.js';
import { native } from './native.js';
import { cgroup2Mount, createContainerCgroup, removeCgroup, DEVICE_RULES } from './cgroup.js';
import * as registry from './registry.js';
import { resolveInTree, findInit, groupId, isExecutableInTree, lookupUser, resolvConfKind, supplementaryGroups, treeMachineId } from './tree.js';

/** Hooks later features use (boot, journal, notify) without the core knowing them. */
export interface SuperviseHooks {
  /** Extra facts merged into the plan (journal bind, notify socket…). */
  facts?: (opts: RunOptions, uuid: string) => Partial<PlanFacts>;
  /** Called once the container runs. */
  onStarted?: (info: { pid: number; name: string; uuid: string }) => void;
  /** Called when the container ended, before cleanup. */
  onExited?: () => void;
  /** Log a line (stderr by default) unless quiet. */
  log?: (line: string) => void;
  /** Relay SIGTERM/SIGINT/SIGHUP sent to this process (the CLI); library callers use `signal`. */
  forwardSignals?: boolean;
  /** Aborting kills the container (poweroff first when booted). */
  signal?: AbortSignal;
  /** fds for the container's stdin, stdout, stderr in pipe mode. */
  stdio?: [number, number, number];
}

const SIGRTMIN_3 = 34 + 3; // SIGRTMIN is 34 with glibc on Linux

/** A stable per-machine UUID: the tree's machine-id if set, else derived from tree and name. */
export function containerUuid(directory: string, machine: string): string {
  const id = treeMachineId(directory) ?? hash128(`nsbox\0${directory}\0${machine}`);
  const h = id.split('');
  h[12] = '4';
  h[16] = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}

/**
 * A stable 128-bit hex digest (four FNV-1a lanes). Not cryptographic: it only
 * has to be stable and spread; node:crypto costs ~15 ms to load on the run path.
 */
function hash128(text: string): string {
  let out = '';
  for (let lane = 0; lane < 4; lane++) {
    let h = (0x811c9dc5 ^ (lane * 0x9e3779b9)) >>> 0;
    for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    for (let i = 0; i < 4; i++) { h ^= h >>> 13; h = Math.imul(h, 0x5bd1e995) >>> 0; h ^= h >>> 15; }
    out += h.toString(16).padStart(8, '0');
  }
  return out;
}

/** A token unique to this supervisor instance. */
function instanceToken(): string {
  return `${process.pid.toString(16)}${process.hrtime.bigint().toString(16)}${Math.floor(Math.random() * 2 ** 32).toString(16)}`.slice(-16).padStart(16, '0');
}

/** The argv to exec: init for --boot, the command, or the user's login shell. */
function commandArgv(opts: RunOptions, user: { shell?: string } | undefined): string[] {
  const root = opts.directory;
  if (opts.boot) {
    const init = findInit(root);
    if (!init) {
      throw new SetupError(`\`${root}\` has no init to boot (looked for /usr/lib/systemd/systemd, /lib/systemd/systemd, /sbin/init)`, {
        hint: 'install systemd in the tree (nsbox bootstrap debian --variant boot) or run a command without -b', exitCode: 125,
      });
    }
    return [init, ...opts.command];
  }
  if (opts.command.length) return opts.command;
  const shells = [user?.shell, '/bin/sh'].filter((s): s is string => !!s && s.startsWith('/'));
  const shell = shells.find((s) => isExecutableInTree(root, s));
  if (!shell) {
    throw new SetupError(`\`${root}\` has no usable shell (${shells.join(' or ')} missing)`, {
      hint: 'pass a COMMAND to run, or check that the tree is a complete distribution', exitCode: 125,
    });
  }
  return [shell, '-l'];
}

/** HOME and the starting directory fall back to / when the tree lacks them (as login does). */
function existingDir(root: string, dir: string): string {
  const host = resolveInTree(root, dir);
  try { return host && statSync(host).isDirectory() ? dir : '/'; } catch { return '/'; }
}

function hostFile(...candidates: string[]): string | undefined {
  return candidates.find((p) => existsSync(p));
}

/**
 * Runs the container to completion and returns its exit status (the
 * command's own status, 128+N for a signal).
 */
export async function supervise(opts: RunOptions, hooks: SuperviseHooks = {}): Promise<number> {
  if (process.getuid?.() !== 0) {
    throw new SetupError('nsbox run needs root (namespaces and mounts)', { hint: 'run it with sudo', exitCode: 125 });
  }
  const log = hooks.log ?? ((l: string) => { if (!opts.quiet) writeSync(2, l + '\n'); });
  const root = opts.directory;
  const uuid = containerUuid(root, opts.machine);

  // Who runs: -u USER, else root (the default shell comes from root's entry).
  let user: PlanFacts['user'];
  const rootEntry = lookupUser(root, 'root');
  if (opts.user) {
    const e = lookupUser(root, opts.user);
    if (!e) {
      if (!/^\d+$/.test(opts.user)) throw new SetupError(`user \`${opts.user}\` does not exist in the tree's /etc/passwd`, { hint: 'create it inside the container first (useradd) or pass a numeric uid', exitCode: 125 });
      user = { uid: Number(opts.user), gid: Number(opts.user), groups: [], home: '/', name: opts.user };
    } else {
      user = { uid: e.uid, gid: e.gid, groups: supplementaryGroups(root, e.name), home: e.home, name: e.name };
    }
  }
  const argv = commandArgv(opts, opts.user ? lookupUser(root, opts.user) : rootEntry);

  const token = instanceToken();
  const entry: registry.MachineEntry = {
    name: opts.machine, leader: 0, supervisor: process.pid, supervisorStart: registry.processStart(process.pid) ?? '',
    directory: root, boot: opts.boot, started: new Date().toISOString(), uuid, token,
  };
  registry.claim(entry);

  let cgroupDir: string | undefined;
  let guard: { fd: number; pid: number } | undefined;
  let masterFd = -1;
  const nat = native();
  const cleanup = () => {
    if (cgroupDir) removeCgroup(cgroupDir);
    registry.release(entry);
    if (guard) {
      try { writeSync(guard.fd, 'x'); closeSync(guard.fd); } catch { /* guard gone */ }
      nat.reap(guard.pid); // its first process exited right after start
      guard = undefined;
    }
  };
  try {
    const mount = cgroup2Mount();
    if (mount) {
      cgroupDir = createContainerCgroup(mount, `${opts.machine}-${token.slice(0, 8)}`);
      entry.cgroup = cgroupDir;
      const err = nat.devicePolicy(cgroupDir, DEVICE_RULES);
      if (err) log(`nsbox: warning: ${err}; device nodes are not restricted in this container`);
    }
    // A guard removes the cgroup and our entry if this process is killed.
    guard = nat.guard([
      ...(cgroupDir ? [`c${cgroupDir}`] : []),
      `f${registry.entryPath(entry.name)}\t${token}`,
    ]);

    let consolePath: string | undefined;
    if (opts.console !== 'pipe') {
      const pty = nat.openpty();
      masterFd = pty.fd;
      consolePath = pty.path;
    }
    const facts: PlanFacts = {
      uuid, consolePath, cgroup: cgroupDir,
      hostOsRelease: hostFile('/etc/os-release', '/usr/lib/os-release'),
      hostResolvConf: hostFile('/etc/resolv.conf'),
      resolvConf: resolvConfKind(root),
      ttyGid: groupId(root, 'tty', 5),
      user: user && { ...user, home: existingDir(root, user.home) }, home: existingDir(root, rootEntry?.home ?? '/root'), argv,
      term: opts.console === 'pipe' ? undefined : (process.env.TERM ?? 'xterm-256color'),
      stdio: hooks.stdio,
      ...hooks.facts?.(opts, uuid),
    };
    const plan = buildPlan(opts, facts);
    const started = nat.spawn(encodePlan(plan));
    if ('error' in started) {
      const code = started.code === 127 || started.code === 126 ? started.code : 125;
      throw new NsboxError(started.error, {
        code: code === 127 ? 'not-found' : 'setup', exitCode: code,
        hint: code === 127 ? `check the command exists inside \`${root}\`` : undefined,
      });
    }
    entry.leader = started.pid;
    registry.update(entry);
    if (opts.console === 'interactive' || opts.console === 'read-only') {
      log(`Spawning container ${opts.machine} on ${root}.\nPress Ctrl-] three times within 1s to kill container.`);
    }
    hooks.onStarted?.({ pid: started.pid, name: opts.machine, uuid });
    const status = await superviseProcess(opts, hooks, started.pid, () => nat.reap(started.pid), masterFd, (r, c) => nat.setWinsize(masterFd, r, c), log);
    masterFd = -1;
    hooks.onExited?.();
    return status;
  } finally {
    if (masterFd >= 0) { try { closeSync(masterFd); } catch { /* closed */ } }
    cleanup();
  }
}

/** Waits for the container, relaying signals and the console; resolves with the exit status. */
async function superviseProcess(opts: RunOptions, hooks: SuperviseHooks, pid: number, reap: () => number, masterFd: number,
  setWinsize: (rows: number, cols: number) => void, log: (l: string) => void): Promise<number> {
  let requestedSignal = 0;
  let killed = false;
  let proxy: import('./console.js').ConsoleProxy | undefined;
  if (masterFd >= 0) {
    const { proxyConsole } = await import('./console.js');
    proxy = proxyConsole({
      mode: opts.console, masterFd, setWinsize,
      onKillRequest: () => { killed = true; try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } },
    });
  }
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  const forward = (sig: NodeJS.Signals) => {
    const num = { SIGTERM: 15, SIGINT: 2, SIGHUP: 1 }[sig as 'SIGTERM'];
    try {
      if (opts.boot) {
        // A booted system shuts down cleanly on SIGRTMIN+3; a second request kills.
        if (requestedSignal) process.kill(pid, 'SIGKILL'); else process.kill(pid, SIGRTMIN_3);
        requestedSignal = num;
        return;
      }
      process.kill(pid, sig);
      // PID 1 ignores signals it has no handler for; apply the default action ourselves.
      if (!catches(pid, num)) { requestedSignal = num; process.kill(pid, 'SIGKILL'); }
    } catch { /* already gone */ }
  };
  const relay = hooks.forwardSignals !== false;
  if (relay) for (const s of signals) process.on(s, forward);
  const onAbort = () => forward('SIGTERM');
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  if (hooks.signal?.aborted) onAbort();
  try {
    const status = await waitExit(reap);
    if (proxy) { await drain(); proxy.close(); }
    return exitCode(status, opts, requestedSignal, killed, log);
  } finally {
    if (relay) for (const s of signals) process.off(s, forward);
    hooks.signal?.removeEventListener('abort', onAbort);
  }
}

/** Lets the last output of the container reach the terminal. */
function drain(): Promise<void> { return new Promise((r) => setTimeout(r, 30)); }

/** Whether pid has a handler for sig (SigCgt in /proc/PID/status). */
function catches(pid: number, sig: number): boolean {
  try {
    const m = /SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return !!m && (BigInt(`0x${m[1]}`) & (1n << BigInt(sig - 1))) !== 0n;
  } catch { return false; }
}

/**
 * Waits for the container's first process: on every SIGCHLD (and once a
 * second, in case a signal was coalesced away) try to reap it. A timer keeps
 * the event loop alive; signal listeners alone do not.
 */
function waitExit(reap: () => number): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const st = reap();
      if (st === -1) return;
      process.off('SIGCHLD', check);
      clearInterval(timer);
      if (st === -2) reject(new SetupError('lost track of the container (not a child of nsbox)'));
      else resolve(st);
    };
    const timer = setInterval(check, 1000);
    process.on('SIGCHLD', check);
    check();
  });
}

/** Decodes a wait status the way a shell reports it. */
function exitCode(status: number, opts: RunOptions, requested: number, killed: boolean, log: (l: string) => void): number {
  const signaled = (status & 0x7f) !== 0 && (status & 0x7f) !== 0x7f;
  const sig = status & 0x7f;
  const code = (status >> 8) & 0xff;
  if (killed) { log(`Container ${opts.machine} terminated by Ctrl-].`); return 128 + 9; }
  if (signaled) {
    if (requested && sig === 9) return 128 + requested;
    if (opts.boot && sig === 2) return 0; // poweroff/halt inside: the kernel reports SIGINT
    return 128 + sig;
  }
  if (opts.console === 'interactive' || opts.console === 'read-only') {
    log(code === 0 ? `Container ${opts.machine} exited successfully.` : `Container ${opts.machine} failed with error code ${code}.`);
  }
  return code;
}

export { EXIT };
