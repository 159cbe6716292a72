/**
 * The container plan: plain data describing everything the native helper
 * does, in order. The builder only appends; runtime/wire.ts serializes; the
 * C walks the list. Tests assert on plans without root.
 */
import type { RunOptions, OverlaySpec } from './options.js';
import { networkdDropin, type ContainerNetif } from './net/plan.js';

/** mount(2) flags used in plans. */
export const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, RELATIME: 1 << 21, STRICTATIME: 1 << 24 } as const;

export type MountOp =
  | { kind: 'mount'; source: string; dest: string; fstype: string; flags: number; data: string }
  | { kind: 'bind'; source: string; dest: string; readonly?: boolean; recursive?: boolean; optional?: boolean; nosuid?: boolean; nodev?: boolean; noexec?: boolean }
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'symlink'; target: string; path: string }
  | { kind: 'mknod'; path: string; mode: number; major: number; minor: number }
  | { kind: 'mask'; path: string }
  | { kind: 'readonly'; path: string }
  | { kind: 'write'; path: string; mode: number; content: string }
  /** An overlayfs on dest (--overlay): `work` is the host work directory beside a host upper layer. */
  | { kind: 'overlay'; lowers: OverlaySpec['lowers']; upper?: OverlaySpec['upper']; work?: string; dest: string; readonly: boolean }
  /** Moves a mount the supervisor made (userns.mounts[fd], handed over at the rendezvous) onto dest. */
  | { kind: 'attach'; fd: number; dest: string };

/** A detached mount the supervisor makes at the rendezvous, with host privileges, for a -U child. */
export type HostMount =
  /**
   * A clone of a host path's mount (open_tree, with host root's access to the path), idmapped with
   * `idmap` (the container's ids seen unshifted: mount_setattr).
   */
  | { kind: 'clone'; source: string; idmap: boolean; readonly?: boolean; recursive?: boolean }
  /** The host's sysfs: one can only be mounted from the user namespace that owns the network namespace. */
  | { kind: 'sysfs' };

/** The user namespace of a -U container (runtime/userns.ts). */
export interface PlanUserns {
  /** Host uid (and gid) of root inside, and how many ids are mapped. */
  uidShift: number;
  uidCount: number;
  /** Mounts the supervisor makes and hands over, in order: the child gets them as passed_fds[0…]. */
  mounts: HostMount[];
  /** Index in `mounts` of the tree (idmapped or not), which replaces the tree's plain bind mount. */
  treeMount?: number;
  /** The container's cgroup: the supervisor moves the child in and hands it over (chown) at the rendezvous. */
  cgroup?: string;
}

export interface ContainerPlan {
  tree: string;
  /** Extra namespaces beyond mount, pid, ipc and uts (always new). */
  network: boolean;
  cgroupNamespace: boolean;
  /** cgroup2 directory the child is moved into before unsharing its cgroup namespace. */
  cgroup?: string;
  mounts: MountOp[];
  rootReadOnly: boolean;
  /** sync(2), fsync(2) and relatives succeed without doing anything (a seccomp filter). */
  suppressSync: boolean;
  hostname: string;
  /** Bounding, permitted, effective and inheritable set. */
  capabilities: bigint;
  user?: { uid: number; gid: number; groups: number[] };
  cwd?: string;
  /** Host path of the pty slave that becomes /dev/console and stdio, or none for pipe mode. */
  consolePath?: string;
  bringUpLoopback: boolean;
  /** network: interfaces the host steps move in, brought up (and addressed) by the child after lo. */
  netifs?: ContainerNetif[];
  /** The tree as root: under a tmpfs overlay (-x, --volatile=overlay) or a tmpfs holding the tree's /usr (--volatile=yes). */
  rootLayers?: 'overlay' | 'volatile-yes';
  /** A user namespace (-U): the child waits at the rendezvous for its id maps and mounts. */
  userns?: PlanUserns;
  /** The child waits once its namespaces exist, until the supervisor's host steps are done (supervise.ts). */
  rendezvous?: boolean;
  listenFds: number[];
  /** fds that become the container's stdin, stdout, stderr in pipe mode (default: nsbox's own). */
  stdio?: [number, number, number];
  env: string[];
  argv: string[];
}

/** Facts about the host and the tree that the plan depends on, gathered by the caller. */
export interface PlanFacts {
  uuid: string;
  consolePath?: string;
  cgroup?: string;
  /** Host file to show as /run/host/os-release. */
  hostOsRelease?: string;
  /** Host resolv.conf to show inside, and how the tree's looks. */
  hostResolvConf?: string;
  resolvConf: { kind: 'file' | 'missing' | 'link'; target?: string };
  /** gid of the tree's tty group (devpts gid=). */
  ttyGid: number;
  /** Resolved user for -u, and the tree's login shell for the default command. */
  user?: { uid: number; gid: number; groups: number[]; home: string; name: string };
  home: string;
  /** The argv to exec: the command, the login shell, or init and its arguments. */
  argv: string[];
  term?: string;
  /** Extra mounts for journal linking (host dir → container dir). */
  journal?: { source: string; dest: string };
  /** Extra environment from the caller (e.g. NOTIFY_SOCKET). */
  extraEnv?: string[];
  /** fds for the container's stdin, stdout, stderr (pipe mode). */
  stdio?: [number, number, number];
  /** Extra files under /run/host (e.g. the notify socket directory). */
  runHostBinds?: { source: string; dest: string }[];
  /** network: the container's side of its links (runtime/net/plan.ts). */
  netifs?: ContainerNetif[];
  /** The user namespace picked for -U (runtime/userns.ts): its range, and whether the tree is idmapped (else chowned or as is). */
  userns?: { shift: number; count: number; idmapTree: boolean };
  /** Host work directories of the --overlay mounts with a host upper layer, by index in opts.overlays (runtime/overlay.ts). */
  overlayWork?: (string | undefined)[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Files under /proc that leak host information or control: hidden (nspawn masks the same). */
export const MASKED_PROC = ['/proc/kcore', '/proc/keys', '/proc/sysrq-trigger', '/proc/timer_list', '/proc/kallsyms', '/proc/sched_debug', '/proc/latency_stats', '/proc/timer_stats', '/proc/kmsg'];
/** Directories under /proc that stay visible but read-only. */
export const READONLY_PROC = ['/proc/sys', '/proc/acpi', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/scsi', '/proc/asound'];
/** Device nodes of the private /dev: name, major, minor. */
export const DEVICES: [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/**
 * Builds the plan for a container from validated options and gathered facts.
 *
 * @example
 * const plan = buildPlan(opts, { uuid, resolvConf: { kind: 'file' }, ttyGid: 5, home: '/root', argv: ['/bin/true'] });
 */
export function buildPlan(opts: RunOptions, facts: PlanFacts): ContainerPlan {
  const m: MountOp[] = [];
  const fsFlags = MS.NOSUID | MS.NODEV | MS.NOEXEC;
  const userns = facts.userns && usernsPlan(facts.userns, facts.cgroup, opts.directory);

  // /proc for the new pid namespace, with the host's knobs out of reach.
  m.push({ kind: 'mount', source: 'proc', dest: '/proc', fstype: 'proc', flags: fsFlags, data: '' });
  for (const p of READONLY_PROC) m.push({ kind: 'readonly', path: p });
  for (const p of MASKED_PROC) m.push({ kind: 'mask', path: p });

  // /sys read-only; the container's own cgroup tree writable under it.
  if (userns && !opts.privateNetwork) m.push({ kind: 'attach', fd: hostMount(userns, { kind: 'sysfs' }), dest: '/sys' });
  else m.push({ kind: 'mount', source: 'sysfs', dest: '/sys', fstype: 'sysfs', flags: fsFlags | MS.RDONLY, data: '' });
  if (facts.cgroup) m.push({ kind: 'mount', source: 'cgroup2', dest: '/sys/fs/cgroup', fstype: 'cgroup2', flags: fsFlags, data: '' });

  // A private /dev: a few nodes, a devpts instance, shm and mqueue.
  m.push({ kind: 'mount', source: 'tmpfs', dest: '/dev', fstype: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME, data: 'mode=755,size=4m,nr_inodes=64k' });
  for (const [name, major, minor] of DEVICES) {
    // mknod is refused in a user namespace: the host's nodes are bind-mounted instead, as nspawn does
    if (userns) m.push({ kind: 'bind', source: `/dev/${name}`, dest: `/dev/${name}` });
    else m.push({ kind: 'mknod', path: `/dev/${name}`, mode: 0o20666, major, minor });
  }
  m.push({ kind: 'mount', source: 'devpts', dest: '/dev/pts', fstype: 'devpts', flags: MS.NOSUID | MS.NOEXEC, data: `newinstance,ptmxmode=0666,mode=620,gid=${facts.ttyGid}` });
  m.push({ kind: 'symlink', target: 'pts/ptmx', path: '/dev/ptmx' });
  m.push({ kind: 'mount', source: 'tmpfs', dest: '/dev/shm', fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV | MS.STRICTATIME, data: 'mode=1777' });
  m.push({ kind: 'mount', source: 'mqueue', dest: '/dev/mqueue', fstype: 'mqueue', flags: fsFlags, data: '' });
  for (const [link, target] of [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']]) {
    m.push({ kind: 'symlink', target, path: `/dev/${link}` });
  }
  if (facts.consolePath) m.push({ kind: 'bind', source: facts.consolePath, dest: '/dev/console' });

  // /run and /tmp are the container's own.
  m.push({ kind: 'mount', source: 'tmpfs', dest: '/run', fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV | MS.STRICTATIME, data: 'mode=755,size=20%,nr_inodes=800k' });
  m.push({ kind: 'mount', source: 'tmpfs', dest: '/tmp', fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV | MS.STRICTATIME, data: 'mode=1777,size=50%,nr_inodes=400k' });
  // The container interface: who runs us, and the host's os-release.
  m.push({ kind: 'mkdir', path: '/run/host', mode: 0o755 });
  m.push({ kind: 'write', path: '/run/host/container-manager', mode: 0o444, content: 'nsbox\n' });
  m.push({ kind: 'write', path: '/run/host/container-uuid', mode: 0o444, content: `${facts.uuid}\n` });
  if (facts.hostOsRelease) m.push({ kind: 'bind', source: facts.hostOsRelease, dest: '/run/host/os-release', readonly: true });
  for (const b of facts.runHostBinds ?? []) {
    if (userns) m.push({ kind: 'attach', fd: hostMount(userns, { kind: 'clone', source: b.source, idmap: false }), dest: b.dest });
    else m.push({ kind: 'bind', source: b.source, dest: b.dest });
  }
  // network: a booted networkd keeps the static address nsbox gives host0.
  if (opts.boot) {
    for (const n of facts.netifs ?? []) {
      const d = networkdDropin(n);
      if (d) m.push({ kind: 'mkdir', path: d.dir, mode: 0o755 }, { kind: 'write', path: d.path, mode: 0o644, content: d.content });
    }
  }

  // Name resolution: the host's resolv.conf, unless the container has its own network.
  if (facts.hostResolvConf && !opts.privateNetwork) {
    if (facts.resolvConf.kind === 'file' || (facts.resolvConf.kind === 'missing' && !opts.readOnly)) {
      m.push({ kind: 'bind', source: facts.hostResolvConf, dest: '/etc/resolv.conf', readonly: true, optional: true });
    } else if (facts.resolvConf.kind === 'link' && facts.resolvConf.target?.startsWith('/run/')) {
      // e.g. systemd-resolved's stub link: provide its target in our /run.
      const t = facts.resolvConf.target;
      m.push({ kind: 'mkdir', path: t.slice(0, t.lastIndexOf('/')) || '/', mode: 0o755 });
      m.push({ kind: 'bind', source: facts.hostResolvConf, dest: t, readonly: true, optional: true });
    }
  }

  if (facts.journal) {
    // Under -U the host's journal directory is idmapped: the container's journald writes it as host root would.
    if (userns) m.push({ kind: 'attach', fd: hostMount(userns, { kind: 'clone', source: facts.journal.source, idmap: true }), dest: facts.journal.dest });
    else m.push({ kind: 'bind', source: facts.journal.source, dest: facts.journal.dest });
  }
  // --volatile=state: the tree read-only (below) with a fresh /var.
  if (opts.volatile === 'state') m.push({ kind: 'mount', source: 'tmpfs', dest: '/var', fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV | MS.STRICTATIME, data: 'mode=0755' });

  // The user's mounts last, so they can cover anything above.
  for (const b of opts.binds) {
    // Under -U the supervisor clones the host path (idmapped with :idmap): the child could not reach a 0700 parent.
    if (userns) {
      m.push({ kind: 'attach', fd: hostMount(userns, { kind: 'clone', source: b.source, idmap: !!b.idmap, readonly: b.readonly, recursive: !b.norbind }), dest: b.dest });
    } else m.push({ kind: 'bind', source: b.source, dest: b.dest, readonly: b.readonly, recursive: !b.norbind });
  }
  for (const t of opts.tmpfs) m.push({ kind: 'mount', source: 'tmpfs', dest: t.dest, fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV, data: t.options });
  opts.overlays.forEach((o, i) => m.push({ kind: 'overlay', lowers: o.lowers, upper: o.upper, work: facts.overlayWork?.[i], dest: o.dest, readonly: o.readonly }));

  const user = facts.user;
  const env = [
    `PATH=${DEFAULT_PATH}`,
    `HOME=${user?.home ?? facts.home}`,
    `USER=${user?.name ?? 'root'}`,
    `LOGNAME=${user?.name ?? 'root'}`,
    `TERM=${facts.term ?? (facts.consolePath ? 'xterm-256color' : 'dumb')}`,
    'container=nsbox',
    `container_uuid=${facts.uuid}`,
    ...(opts.listenFds.length ? [`LISTEN_FDS=${opts.listenFds.length}`, 'LISTEN_PID=1'] : []),
    ...(opts.listenFdNames.length ? [`LISTEN_FDNAMES=${opts.listenFdNames.join(':')}`] : []),
    ...(facts.extraEnv ?? []),
  ];
  // -E wins over defaults, as in nspawn.
  const merged = new Map<string, string>();
  for (const e of [...env, ...opts.env]) merged.set(e.slice(0, e.indexOf('=')), e);

  return {
    tree: opts.directory,
    network: opts.privateNetwork,
    cgroupNamespace: true,
    // Under -U the supervisor moves the child into its cgroup (userns.cgroup): the child cannot write the host's cgroup.procs.
    cgroup: userns ? undefined : facts.cgroup,
    mounts: m,
    rootReadOnly: opts.readOnly || opts.volatile === 'state',
    ...(opts.ephemeral || opts.volatile === 'overlay' ? { rootLayers: 'overlay' as const } : opts.volatile === 'yes' ? { rootLayers: 'volatile-yes' as const } : {}),
    ...(userns ? { userns } : {}),
    suppressSync: opts.suppressSync,
    hostname: opts.hostname,
    capabilities: opts.capabilities,
    user: user ? { uid: user.uid, gid: user.gid, groups: user.groups } : undefined,
    // --volatile=yes: a fresh root has no home directories
    cwd: opts.chdir ?? (opts.boot || opts.volatile === 'yes' ? '/' : (user?.home ?? facts.home)),
    consolePath: facts.consolePath,
    bringUpLoopback: opts.privateNetwork,
    ...(facts.netifs?.length ? { netifs: facts.netifs } : {}),
    listenFds: opts.listenFds,
    stdio: facts.stdio,
    env: [...merged.values()],
    argv: facts.argv,
  };
}

/** The user namespace part of a plan: the tree first (index 0), then mounts as ops ask for them. */
function usernsPlan(u: NonNullable<PlanFacts['userns']>, cgroup: string | undefined, tree: string): PlanUserns {
  const plan: PlanUserns = { uidShift: u.shift, uidCount: u.count, mounts: [], ...(cgroup ? { cgroup } : {}) };
  plan.treeMount = hostMount(plan, { kind: 'clone', source: tree, idmap: u.idmapTree, recursive: true });
  return plan;
}

/** Adds a mount for the supervisor to make and returns its index (the child's passed_fds[index]). */
function hostMount(u: PlanUserns, mnt: HostMount): number {
  u.mounts.push(mnt);
  return u.mounts.length - 1;
}
