/**
 * Runs a container: gathers facts, builds the plan, spawns it through the
 * native helper, then supervises — console, signals, exit status, and
 * cleanup of everything it made on the host (cgroup, registry entry).
 */
import { dirname } from 'node:path';
import { existsSync, writeSync, closeSync, readFileSync, statSync, fchownSync } from 'node:fs';
import { linkJournal } from './journal.js';
import { NsboxError, SetupError, EXIT } from '../errors.js';
import type { RunOptions } from './options.js';
import { buildPlan, type ContainerPlan, type PlanFacts } from './plan.js';
import { encodePlan } from './wire.js';
import { native, waitExit, SIGRTMIN_3, type SpawnFailure } from './native.js';
import { cgroup2Mount, createContainerCgroup, removeCgroup, removeCgroupChildren, DEVICE_RULES } from './cgroup.js';
import * as registry from './registry.js';
import { prepareUserns, applyOwnership, usernsSteps, type UsernsSetup } from './userns.js';
import { prepareOverlays, type OverlayDirs } from './overlay.js';
import { readTreeFile, resolveInTree, findInit, groupId, isExecutableInTree, lookupUser, resolvConfKind, supplementaryGroups, treeMachineId } from './tree.js';

/** What a caller (CLI, library, activation) adds to a run. */
export interface SuperviseHooks {
  /** Called when a booted container reports READY=1 (systemd finished booting). */
  onReady?: () => void;
  /** Called once the container runs. */
  onStarted?: (info: { pid: number; name: string; uuid: string }) => void;
  /** Log a line (stderr by default) unless quiet. */
  log?: (line: string) => void;
  /** Relay SIGTERM/SIGINT/SIGHUP sent to this process (the CLI); library callers use `signal`. */
  forwardSignals?: boolean;
  /** Aborting kills the container (poweroff first when booted). */
  signal?: AbortSignal;
  /** fds for the container's stdin, stdout, stderr in pipe mode. */
  stdio?: [number, number, number];
}


/**
 * Host-side work done while the container's first process waits, its
 * namespaces created but nothing in them set up yet (a user namespace's id
 * maps, an interface moved into its network namespace). Steps run in order;
 * the fds they return are handed to the child (spawn.c passed_fds). A step
 * that throws aborts the start.
 */
export type HostStep = (pid: number) => Promise<number[] | void> | number[] | void;

/** Starts the plan, running the host steps at the rendezvous when there are any. */
async function startContainer(nat: ReturnType<typeof native>, plan: ContainerPlan, steps: HostStep[]): Promise<{ pid: number } | SpawnFailure> {
  if (!steps.length) return nat.spawn(encodePlan(plan));
  const pending = nat.spawnPending(encodePlan({ ...plan, rendezvous: true }));
  if ('error' in pending) return pending;
  const fds: number[] = [];
  try {
    for (const step of steps) { const f = await step(pending.pid); if (f) fds.push(...f); }
  } catch (e) {
    pending.abort();
    throw e;
  }
  return pending.resume(fds);
}

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
    for (let i = 0; i < 4; i++) { h = (h ^ (h >>> 13)) >>> 0; h = Math.imul(h, 0x5bd1e995) >>> 0; h = (h ^ (h >>> 15)) >>> 0; }
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
    // As nspawn: a tree without os-release does not look like an OS to boot.
    if (!readTreeFile(root, '/etc/os-release') && !readTreeFile(root, '/usr/lib/os-release')) {
      throw new SetupError(`\`${root}\` does not look like an OS tree to boot (no /etc/os-release or /usr/lib/os-release)`, {
        hint: 'bootstrap a complete distribution into it, or run a command without -b', exitCode: 125,
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

/** The 32-hex-digit machine id systemd will use: the tree's, or container_uuid's. */
export function machineIdFor(directory: string, uuid: string): string {
  return treeMachineId(directory) ?? uuid.replace(/-/g, '');
}

/**
 * Runs the container to completion and returns its exit status (the
 * command's own status, 128+N for a signal). A booted container that
 * reboots is started again in place.
 */
export async function supervise(input: RunOptions, hooks: SuperviseHooks = {}): Promise<number> {
  let opts = input;
  if (process.getuid?.() !== 0) {
    throw new SetupError('nsbox run needs root (namespaces and mounts)', { hint: 'run it with sudo', exitCode: 125 });
  }
  const log = hooks.log ?? ((l: string) => { if (!opts.quiet) writeSync(2, l + '\n'); });
  const warn = hooks.log ?? ((l: string) => writeSync(2, l + '\n'));
  const root = opts.directory;

  // Who runs: -u USER, else root (the default shell comes from root's entry).
  let user: PlanFacts['user'];
  const rootEntry = lookupUser(root, 'root');
  const userEntry = opts.user ? lookupUser(root, opts.user) : rootEntry;
  if (opts.user) {
    const e = userEntry;
    if (!e) {
      if (!/^\d+$/.test(opts.user)) throw new SetupError(`user \`${opts.user}\` does not exist in the tree's /etc/passwd`, { hint: 'create it inside the container first (useradd) or pass a numeric uid', exitCode: 125 });
      user = { uid: Number(opts.user), gid: Number(opts.user), groups: [], home: '/', name: opts.user };
    } else {
      user = { uid: e.uid, gid: e.gid, groups: supplementaryGroups(root, e.name), home: e.home, name: e.name };
    }
  }
  const argv = commandArgv(opts, userEntry);

  const token = instanceToken();
  const entry = registry.claimFree(opts.machine, opts.machineAuto, (name) => ({
    name, leader: 0, supervisor: process.pid, supervisorStart: registry.processStart(process.pid) ?? '',
    directory: root, boot: opts.boot, started: new Date().toISOString(), uuid: containerUuid(root, name), token,
    capabilities: opts.capabilities.toString(16),
  }));
  if (entry.name !== opts.machine) opts = { ...opts, machine: entry.name, hostname: opts.hostnameAuto ? entry.name : opts.hostname };
  const uuid = entry.uuid;

  let cgroupDir: string | undefined;
  let guard: { fd: number; pid: number } | undefined;
  let pty: { fd: number; path: string; slaveFd: number } | undefined;
  let proxy: import('./console.js').ConsoleProxy | undefined;
  let relay: import('./notify.js').NotifyRelay | undefined;
  let network: import('./net/setup.js').HostNetwork | undefined;
  let usernsSetup: UsernsSetup | undefined;
  let overlayDirs: OverlayDirs | undefined;
  const nat = native();
  const cleanup = () => {
    network?.close();
    if (cgroupDir) removeCgroup(cgroupDir);
    usernsSetup?.release();
    overlayDirs?.remove();
    registry.release(entry);
    if (guard) {
      try { writeSync(guard.fd, 'x'); closeSync(guard.fd); } catch { /* guard gone */ }
      nat.reap(guard.pid); // its first process exited right after start
      guard = undefined;
    }
  };
  const control = new Control(opts, hooks, log);
  let terminal: import('./terminal.js').Terminal | undefined;
  try {
    if (opts.console === 'interactive' || opts.console === 'read-only') terminal = (await import('./terminal.js')).saveTerminal(opts.console);
    const mount = cgroup2Mount();
    if (mount) {
      cgroupDir = createContainerCgroup(mount, `${opts.machine}-${token.slice(0, 8)}`);
      entry.cgroup = cgroupDir;
      // On the parent of all containers: it applies to each, and is loaded once.
      const err = nat.devicePolicy(dirname(cgroupDir), DEVICE_RULES);
      if (err) warn(`nsbox: warning: ${err}; device nodes are not restricted in this container`);
    }
    // -U: the uid range (locked while we run) and how the tree's owners follow it;
    // --overlay: the work directories of host upper layers.
    if (opts.userns) usernsSetup = prepareUserns(opts, opts.machine, token, nat, warn);
    if (opts.overlays.some((o) => o.upper && o.upper !== 'tmpfs')) overlayDirs = prepareOverlays(root, opts.overlays);
    // A guard removes the cgroup and our entry if this process is killed.
    guard = nat.guard([
      ...(cgroupDir ? [`c${cgroupDir}`] : []),
      `f${registry.entryPath(entry.name)}\t${token}`,
      ...(terminal?.guardEntry ? [terminal.guardEntry] : []),
      ...(usernsSetup?.guardEntries ?? []),
      ...(overlayDirs?.guardEntries ?? []),
    ]);
    // The chown pass runs guarded: killed half-way, the tree's root keeps the busy owner and the next run redoes it.
    if (usernsSetup) applyOwnership(usernsSetup, root, nat, log);

    if (opts.console !== 'pipe') {
      pty = nat.openpty();
      // -U: /dev/console belongs to the container's root, as nspawn makes it
      if (usernsSetup) fchownSync(pty.slaveFd, usernsSetup.shift, usernsSetup.shift);
    }
    // Readiness: relay the booted system's own READY=1; a one-shot command is ready at once.
    if (opts.boot && (process.env.NOTIFY_SOCKET || hooks.onReady)) {
      const { startRelay } = await import('./notify.js');
      relay = startRelay(opts.machine, token, () => hooks.onReady?.());
    }
    const journal = opts.boot || opts.linkJournal !== 'auto'
      ? linkJournal(opts.linkJournal, root, machineIdFor(root, uuid), warn) : {};
    // network: host checks and allocations before anything exists (runtime/net/setup.ts).
    if (opts.network) network = (await import('./net/setup.js')).prepareNetwork(opts.network, opts.machine, token, warn);
    const facts: PlanFacts = {
      uuid, consolePath: pty?.path, cgroup: cgroupDir,
      hostOsRelease: hostFile('/etc/os-release', '/usr/lib/os-release'),
      hostResolvConf: hostFile('/etc/resolv.conf'),
      resolvConf: resolvConfKind(root),
      ttyGid: groupId(root, 'tty', 5),
      user: user && { ...user, home: existingDir(root, user.home) }, home: existingDir(root, rootEntry?.home ?? '/root'), argv,
      term: opts.console === 'pipe' ? undefined : (process.env.TERM ?? (opts.boot ? 'vt220' : 'xterm-256color')),
      stdio: hooks.stdio,
      journal: journal.bind,
      runHostBinds: relay ? [{ source: relay.path, dest: '/run/host/notify' }] : undefined,
      extraEnv: relay ? ['NOTIFY_SOCKET=/run/host/notify'] : undefined,
      netifs: network?.plan.netifs,
      userns: usernsSetup && { shift: usernsSetup.shift, count: usernsSetup.count, idmapTree: usernsSetup.ownership === 'map' },
      overlayWork: overlayDirs?.work,
    };
    const plan = buildPlan(overlayDirs ? { ...opts, overlays: overlayDirs.overlays } : opts, facts);
    const hostSteps: HostStep[] = [];
    if (network) { const n = network; hostSteps.push((pid) => n.attach(pid)); }
    // -U: id maps, cgroup and mounts first (the plan numbers the handed-over mounts from 0).
    const userns = plan.userns && usernsSteps(plan, nat);
    if (userns) hostSteps.unshift(userns.step);
    if (opts.console === 'interactive' || opts.console === 'read-only') {
      log(`Spawning container ${opts.machine} on ${root}.\nPress Ctrl-] three times within 1s to kill container.`);
    }
    // The console proxy loads node:tty (and net): set it up once the
    // container runs, off the start's critical path; the pty buffers output.
    const attachConsole = async () => {
      if (!pty || proxy) return;
      const { proxyConsole } = await import('./console.js');
      const masterFd = pty.fd;
      proxy = proxyConsole({
        mode: opts.console, masterFd, setWinsize: (r, c) => nat.setWinsize(masterFd, r, c),
        onKillRequest: () => control.kill(), terminal,
      });
    };
    for (;;) {
      const started = await startContainer(nat, plan, hostSteps);
      userns?.afterStart();
      if ('error' in started) {
        const code = started.code === 127 || started.code === 126 ? started.code : 125;
        throw new NsboxError(started.error, {
          code: code === 127 ? 'not-found' : 'setup', exitCode: code,
          hint: code === 127 ? `check the command exists inside \`${root}\`` : undefined,
        });
      }
      entry.leader = started.pid;
      registry.update(entry);
      hooks.onStarted?.({ pid: started.pid, name: opts.machine, uuid });
      await attachConsole();
      if (!relay && process.env.NOTIFY_SOCKET) (await import('./notify.js')).notifyHost(`READY=1\nMAINPID=${process.pid}`);
      const status = await control.watch(started.pid);
      network?.detach(); // interfaces back out, links and rules gone (a reboot attaches again)
      const rebooted = opts.boot && !control.stopping && (status & 0x7f) === 1; // init killed by SIGHUP: reboot
      if (rebooted) {
        log(`Container ${opts.machine} is being rebooted.`);
        if (cgroupDir) removeCgroupChildren(cgroupDir);
        continue;
      }
      if (proxy) await drain();
      return control.exitCode(status);
    }
  } finally {
    control.close();
    relay?.close();
    proxy?.close();
    terminal?.restore();
    if (pty) { for (const fd of [pty.fd, pty.slaveFd]) { try { closeSync(fd); } catch { /* closed */ } } }
    cleanup();
  }
}

/** Signals and the exit status of one container (across reboots). */
class Control {
  private pid = 0;
  private requested = 0;
  private killedByUser = false;
  stopping = false;
  private readonly signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  private readonly relay: boolean;
  private readonly forward = (sig: NodeJS.Signals) => this.deliver(sig);
  private readonly onAbort = () => this.deliver('SIGTERM');

  constructor(private readonly opts: RunOptions, private readonly hooks: SuperviseHooks, private readonly log: (l: string) => void) {
    this.relay = hooks.forwardSignals !== false;
    if (this.relay) for (const s of this.signals) process.on(s, this.forward);
    hooks.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Waits for the container's first process (pid) to end; resolves with its wait status. */
  watch(pid: number): Promise<number> {
    this.pid = pid;
    if (this.hooks.signal?.aborted) this.onAbort();
    return waitExit(pid);
  }

  kill(): void {
    this.killedByUser = true;
    this.stopping = true;
    try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
  }

  private deliver(sig: NodeJS.Signals): void {
    const num = { SIGTERM: 15, SIGINT: 2, SIGHUP: 1 }[sig as 'SIGTERM'];
    if (!this.pid) return;
    try {
      if (this.opts.boot) {
        // A booted system shuts down cleanly on SIGRTMIN+3; a second request kills.
        if (this.stopping) process.kill(this.pid, 'SIGKILL'); else process.kill(this.pid, SIGRTMIN_3);
        this.stopping = true;
        this.requested = num;
        return;
      }
      process.kill(this.pid, sig);
      // PID 1 ignores signals it has no handler for; apply the default action ourselves.
      if (!catches(this.pid, num)) { this.requested = num; this.stopping = true; process.kill(this.pid, 'SIGKILL'); }
    } catch { /* already gone */ }
  }

  /** Decodes a wait status the way a shell reports it. */
  exitCode(status: number): number {
    const sig = status & 0x7f;
    const signaled = sig !== 0 && sig !== 0x7f;
    const code = (status >> 8) & 0xff;
    const chatty = this.opts.console === 'interactive' || this.opts.console === 'read-only';
    if (this.killedByUser) { this.log(`Container ${this.opts.machine} terminated by Ctrl-].`); return 128 + 9; }
    if (signaled) {
      if (this.requested && sig === 9) return 128 + this.requested;
      if (this.opts.boot && sig === 2) { if (chatty) this.log(`Container ${this.opts.machine} has been shut down.`); return 0; } // poweroff/halt inside
      if (this.opts.boot && sig === SIGRTMIN_3 && this.stopping) return 0;
      return 128 + sig;
    }
    if (chatty) this.log(code === 0 ? `Container ${this.opts.machine} exited successfully.` : `Container ${this.opts.machine} failed with error code ${code}.`);
    return code;
  }

  close(): void {
    if (this.relay) for (const s of this.signals) process.off(s, this.forward);
    this.hooks.signal?.removeEventListener('abort', this.onAbort);
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

export { EXIT };
