/**
 * The native helper (runtime/native/spawn.c) through koffi. koffi's own
 * entry point costs ~15 ms at start-up (it probes the node binary); the run
 * path loads its prebuilt addon directly when it can, and falls back to the
 * package entry otherwise.
 */
import { createRequire } from 'node:module';
import { constants, existsSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SetupError } from '../errors.js';

type Koffi = typeof import('koffi');
const require = createRequire(import.meta.url);

function loadKoffi(): Koffi {
  const triplet = `${process.platform}_${process.arch}`;
  try {
    const addon = require.resolve(`@koromix/koffi-${process.platform}-${process.arch}/${triplet}/koffi.node`);
    const mod = { exports: {} as Koffi };
    process.dlopen(mod, addon);
    if (typeof (mod.exports as { load?: unknown }).load === 'function') return mod.exports;
  } catch { /* fall back to the package entry */ }
  return require('koffi') as Koffi;
}

/** Finds build/libnsbox.so from both the sources (tsx) and dist/. */
function libraryPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'runtime/native/build/libnsbox.so');
    if (existsSync(candidate)) return candidate;
    const here = join(dir, 'native/build/libnsbox.so');
    if (existsSync(here)) return here;
    dir = dirname(dir);
  }
  throw new SetupError('the native helper is not built (runtime/native/build/libnsbox.so is missing)', { hint: 'run `npm ci` (or `make -C runtime/native`) in the nsbox checkout' });
}

/** A failed start: the child's one-line report and its exit code (127, 126 or 3). */
export type SpawnFailure = { error: string; code: number };

/** A child waiting at its rendezvous (a plan with `rendezvous`): resume or abort it exactly once. */
export interface PendingChild {
  pid: number;
  /** Lets it go on, handing it fds (the child sees them in order); resolves once it has exec'd. */
  resume(fds?: number[]): { pid: number } | SpawnFailure;
  /** Kills and reaps it. */
  abort(): void;
}

export interface Native {
  spawn(plan: Buffer): { pid: number } | SpawnFailure;
  /** Starts a plan that has a rendezvous: the child waits until resumed. */
  spawnPending(plan: Buffer): PendingChild | SpawnFailure;
  /** Wait status if pid ended, -1 while it runs, -2 if it is not our child. */
  reap(pid: number): number;
  /** A pty master, its slave's path, and a slave fd held open (so the master never reads EOF across a reboot). */
  openpty(): { fd: number; path: string; slaveFd: number };
  setWinsize(fd: number, rows: number, cols: number): void;
  /** A terminal's settings (struct termios bytes), or undefined if fd is not one. */
  ttyGet(fd: number): Buffer | undefined;
  ttySet(fd: number, saved: Buffer): void;
  /** 'full': cfmakeraw; 'output': no output processing, echo or line editing (signals kept). */
  ttyRaw(fd: number, mode: 'full' | 'output'): void;
  devicePolicy(cgroupDir: string, rules: [number, number, number, number][]): string | undefined;
  guard(entries: string[]): { fd: number; pid: number };
  /** A listening TCP socket (not close-on-exec); addr "" = every address. Returns fd or -errno. */
  listen(addr: string, port: number, backlog?: number): number;
  /** Resolves with the index of the first fd with a pending connection (-1 on timeout), on a worker thread. */
  waitReadable(fds: number[], timeoutMs: number): Promise<number>;
  /** Accepts and closes pending connections. */
  drainPending(fd: number): number;
  notifySocket(path: string): number;
  /** Receives one sd_notify datagram (worker thread). */
  notifyRecv(fd: number): Promise<string | undefined>;
  notifySend(path: string, message: string): number;
  close(fd: number): void;
  /** The network helper (net.c): rtnetlink, locks, port probes, the clean-up shared with the guard. */
  net: NetNative;
  // user namespaces (runtime/userns.ts)
  /** A detached clone of source's mount, idmapped for pid's user namespace with `idmap`; throws SetupError (EINVAL: the file system cannot idmap). */
  cloneMount(source: string, pid: number, opts?: { recursive?: boolean; readonly?: boolean; idmap?: boolean }): number;
  /** 0 if source's file system takes idmapped mounts, else -errno (asked of the kernel with a throw-away user namespace). */
  idmapProbe(source: string): number;
  /** The host's sysfs as a detached read-only mount. */
  sysfsMount(): number;
  /** Takes an exclusive flock on path (created) and writes token: fd, or -EBUSY when another process holds it. */
  lockFile(path: string, token: string): number;
  /** Whether another process holds a lock on path. */
  lockHeld(path: string): boolean;
  /** Shifts every owner of the tree to shift + (id & 0xFFFF), recording shift as the root's owner; throws SetupError. */
  chownTree(path: string, shift: number): void;
}

/** Host-side network mechanisms (runtime/native/net.c); results are >= 0 or -errno. */
export interface NetNative {
  /** veth pair: host end here, peer into namespace nsfd (-1: here); returns the host end's ifindex. */
  veth(host: string, peer: string, nsfd: number, alias: string): number;
  /** bridge, macvlan (bridge mode) or ipvlan (L2) link, on parent ifindex (0: none), in nsfd (-1: here). */
  newLink(kind: 'bridge' | 'macvlan' | 'ipvlan', name: string, parent: number, nsfd: number, alias: string): number;
  /** up, master ifindex (0: leave), move into nsfd (-1: stay) with an optional new name. */
  setLink(ifindex: number, opts: { up?: boolean; master?: number; nsfd?: number; name?: string }): number;
  addAddress(ifindex: number, address: string, prefix: number): number;
  delLink(ifindex: number): number;
  /** Links, IPv4 addresses and routes of this namespace, as tab-separated lines. */
  dump(): string;
  /** An exclusive lock held until the fd is closed. */
  lock(path: string): number;
  /** 0 when nothing holds the port, else -errno. */
  portFree(proto: 'tcp' | 'udp', port: number): number;
  sysctl(path: string, value: string): number;
  /** Undoes a network set-up from guard entries (runtime/native/net.c nsbox_net_cleanup_argv). */
  cleanup(entries: string[], nsfd: number): void;
  /** Starts a guard for these entries holding nsfd as its fd 3. */
  guard(entries: string[], nsfd: number): { fd: number; pid: number };
}

let cached: Native | undefined;

/** Loads the helper once. */
export function native(): Native {
  if (cached) return cached;
  const koffi = loadKoffi();
  const libPath = libraryPath();
  const lib = koffi.load(libPath);
  const spawn = lib.func('int nsbox_spawn(const uint8_t *plan, int len, _Out_ uint8_t *err, int errlen)');
  const spawnStart = lib.func('int nsbox_spawn_start(const uint8_t *plan, int len, _Out_ uint8_t *err, int errlen, _Out_ void **handle)');
  const spawnResume = lib.func('int nsbox_spawn_resume(void *handle, const int *fds, int nfds, _Out_ uint8_t *err, int errlen)');
  const spawnAbort = lib.func('void nsbox_spawn_abort(void *handle)');
  const reap = lib.func('int nsbox_reap(int pid)');
  const openpty = lib.func('int nsbox_openpty(_Out_ uint8_t *name, int len)');
  const winsize = lib.func('int nsbox_set_winsize(int fd, int rows, int cols)');
  const ttySize = lib.func('int nsbox_tty_size(void)');
  const ttyGet = lib.func('int nsbox_tty_get(int fd, _Out_ uint8_t *saved, int len)');
  const ttySet = lib.func('int nsbox_tty_set(int fd, const uint8_t *saved, int len)');
  const ttyRaw = lib.func('int nsbox_tty_raw(int fd, int mode)');
  const policy = lib.func('int nsbox_device_policy(const char *dir, const int *rules, int n, _Out_ uint8_t *err, int errlen)');
  const guard = lib.func('int nsbox_guard(const char *exe, const uint8_t *entries, int len, _Out_ int *pid)');
  const guardExe = join(dirname(libPath), 'nsbox-guard');
  const listen = lib.func('int nsbox_listen(const char *addr, int port, int backlog)');
  const waitReadable = lib.func('int nsbox_wait_readable(const int *fds, int n, int timeout)');
  const drain = lib.func('int nsbox_drain_pending(int fd)');
  const notifySocket = lib.func('int nsbox_notify_socket(const char *path)');
  const notifyRecv = lib.func('int nsbox_notify_recv(int fd, _Out_ uint8_t *buf, int len)');
  const notifySend = lib.func('int nsbox_notify_send(const char *path, const char *msg)');
  const closeFd = lib.func('int nsbox_close(int fd)');
  // The network functions are declared on first use: a run without network flags never pays for them.
  const netFns = () => ({
    veth: lib.func('int nsbox_nl_veth(const char *host, const char *peer, int nsfd, const char *alias)'),
    newLink: lib.func('int nsbox_nl_newlink(const char *kind, const char *name, int parent, int nsfd, const char *alias)'),
    setLink: lib.func('int nsbox_nl_setlink(int ifindex, int up, int master, int nsfd, const char *name)'),
    addAddr: lib.func('int nsbox_nl_addaddr(int ifindex, const char *addr, int prefix)'),
    delLink: lib.func('int nsbox_nl_dellink(int ifindex)'),
    dump: lib.func('int nsbox_nl_dump(_Out_ uint8_t *buf, int len)'),
    lock: lib.func('int nsbox_flock(const char *path)'),
    portFree: lib.func('int nsbox_port_free(int udp, int port)'),
    sysctl: lib.func('int nsbox_sysctl_set(const char *path, const char *value)'),
    cleanup: lib.func('void nsbox_net_cleanup(const uint8_t *entries, int len, int nsfd)'),
    guard: lib.func('int nsbox_net_guard(const char *exe, const uint8_t *entries, int len, int nsfd, _Out_ int *pid)'),
  });
  let netCache: ReturnType<typeof netFns> | undefined;
  const netFn = new Proxy({} as ReturnType<typeof netFns>, { get: (_, k) => (netCache ??= netFns())[k as keyof ReturnType<typeof netFns>] });
  const entryBuf = (entries: string[]) => Buffer.from(entries.map((e) => e + '\0').join(''));
  const net: NetNative = {
    veth: (host, peer, nsfd, alias) => netFn.veth(host, peer, nsfd, alias) as number,
    newLink: (kind, name, parent, nsfd, alias) => netFn.newLink(kind, name, parent, nsfd, alias) as number,
    setLink: (ifindex, o) => netFn.setLink(ifindex, o.up ? 1 : 0, o.master ?? 0, o.nsfd ?? -1, o.name ?? '') as number,
    addAddress: (ifindex, address, prefix) => netFn.addAddr(ifindex, address, prefix) as number,
    delLink: (ifindex) => netFn.delLink(ifindex) as number,
    dump() {
      for (let size = 1 << 16; ; size *= 4) {
        const b = Buffer.alloc(size);
        const n = netFn.dump(b, size) as number;
        if (n < 0) throw new SetupError(`cannot read the host's network configuration: errno ${-n}`);
        if (n < size - 256) return b.subarray(0, n).toString();
      }
    },
    lock: (path) => netFn.lock(path) as number,
    portFree: (proto, port) => netFn.portFree(proto === 'udp' ? 1 : 0, port) as number,
    sysctl: (path, value) => netFn.sysctl(path, value) as number,
    cleanup(entries, nsfd) { const b = entryBuf(entries); netFn.cleanup(b, b.length, nsfd); },
    guard(entries, nsfd) {
      const b = entryBuf(entries);
      const pid = [0];
      const fd = netFn.guard(guardExe, b, b.length, nsfd, pid) as number;
      if (fd < 0) throw new SetupError(`cannot start the network clean-up guard: errno ${-fd}`);
      return { fd, pid: pid[0] };
    },
  };
  const idmapMount = lib.func('int nsbox_idmap_mount(const char *src, int pid, int rec, int ro, int idmap, _Out_ uint8_t *err, int errlen)');
  const idmapProbe = lib.func('int nsbox_idmap_probe(const char *src)');
  const sysfsMount = lib.func('int nsbox_sysfs_mount(_Out_ uint8_t *err, int errlen)');
  const lockFile = lib.func('int nsbox_lock_file(const char *path, const char *token)');
  const lockProbe = lib.func('int nsbox_lock_probe(const char *path)');
  const chownTree = lib.func('int nsbox_chown_tree(const char *path, unsigned int shift, _Out_ uint8_t *err, int errlen)');
  const cstr = (b: Buffer) => b.subarray(0, Math.max(0, b.indexOf(0))).toString();
  cached = {
    spawn(plan) {
      const err = Buffer.alloc(2048);
      const r = spawn(plan, plan.length, err, err.length) as number;
      if (r > 0) return { pid: r };
      return { error: cstr(err) || 'the container failed to start', code: -r };
    },
    spawnPending(plan) {
      const err = Buffer.alloc(2048);
      const out: unknown[] = [null];
      const r = spawnStart(plan, plan.length, err, err.length, out) as number;
      if (r <= 0) return { error: cstr(err) || 'the container failed to start', code: -r };
      let handle: unknown = out[0];
      if (!handle) throw new SetupError('the native helper returned no rendezvous handle (plan without `rendezvous`)');
      const take = () => { const h = handle; handle = undefined; if (!h) throw new Error('rendezvous already resumed or aborted'); return h; };
      return {
        pid: r,
        resume(fds = []) {
          const e = Buffer.alloc(2048);
          const res = spawnResume(take(), new Int32Array(fds), fds.length, e, e.length) as number;
          return res > 0 ? { pid: res } : { error: cstr(e) || 'the container failed to start', code: -res };
        },
        abort() { if (handle) spawnAbort(take()); },
      };
    },
    openpty() {
      const name = Buffer.alloc(128);
      const fd = openpty(name, name.length) as number;
      if (fd < 0) throw new SetupError(`cannot allocate a pseudo terminal: errno ${-fd}`);
      const path = cstr(name);
      return { fd, path, slaveFd: openSync(path, constants.O_RDWR | constants.O_NOCTTY) };
    },
    reap(pid) { return reap(pid) as number; },
    setWinsize(fd, rows, cols) { winsize(fd, rows, cols); },
    ttyGet(fd) {
      const b = Buffer.alloc(ttySize() as number);
      return (ttyGet(fd, b, b.length) as number) < 0 ? undefined : b;
    },
    ttySet(fd, saved) { ttySet(fd, saved, saved.length); },
    ttyRaw(fd, mode) { ttyRaw(fd, mode === 'full' ? 1 : 2); },
    devicePolicy(dir, rules) {
      const err = Buffer.alloc(512);
      const flat = new Int32Array(rules.flat());
      const r = policy(dir, flat, rules.length, err, err.length) as number;
      return r < 0 ? cstr(err) : undefined;
    },
    listen(addr, port, backlog = 128) { return listen(addr, port, backlog) as number; },
    waitReadable(fds, timeoutMs) {
      const arr = new Int32Array(fds);
      return new Promise((resolve, reject) => {
        waitReadable.async(arr, fds.length, timeoutMs, (err: unknown, r: number) => (err ? reject(err) : resolve(r)));
      });
    },
    drainPending(fd) { return drain(fd) as number; },
    notifySocket(path) { return notifySocket(path) as number; },
    notifyRecv(fd) {
      const buf = Buffer.alloc(4096);
      return new Promise((resolve, reject) => {
        notifyRecv.async(fd, buf, buf.length, (err: unknown, r: number) => (err ? reject(err) : resolve(r < 0 ? undefined : cstr(buf))));
      });
    },
    notifySend(path, message) { return notifySend(path, message) as number; },
    close(fd) { closeFd(fd); },
    net,
    cloneMount(source, pid, o = {}) {
      const err = Buffer.alloc(1024);
      const fd = idmapMount(source, pid, o.recursive ? 1 : 0, o.readonly ? 1 : 0, o.idmap ? 1 : 0, err, err.length) as number;
      if (fd < 0) throw new SetupError(cstr(err), { code: `errno-${-fd}`, hint: 'use --private-users-ownership=chown, or drop :idmap' });
      return fd;
    },
    idmapProbe(source) { return idmapProbe(source) as number; },
    sysfsMount() {
      const err = Buffer.alloc(512);
      const fd = sysfsMount(err, err.length) as number;
      if (fd < 0) throw new SetupError(cstr(err));
      return fd;
    },
    lockFile(path, token) { return lockFile(path, token) as number; },
    lockHeld(path) { return (lockProbe(path) as number) === 1; },
    chownTree(path, shift) {
      const err = Buffer.alloc(1024);
      if ((chownTree(path, shift >>> 0, err, err.length) as number) < 0) {
        throw new SetupError(`cannot shift the owners of \`${path}\` to ${shift}: ${cstr(err)}`, { hint: 'check the tree is on a writable local file system' });
      }
    },
    guard(entries) {
      const buf = Buffer.from(entries.join('\0') + '\0');
      const pid = [0];
      const fd = guard(guardExe, buf, buf.length, pid) as number;
      if (fd < 0) throw new SetupError(`cannot start the cleanup guard: errno ${-fd}`);
      return { fd, pid: pid[0] };
    },
  };
  return cached;
}

/** The poweroff request of a booted systemd: SIGRTMIN+3 (SIGRTMIN is 34 with glibc on Linux). */
export const SIGRTMIN_3 = 37;

/**
 * Waits for a child started by the helper: on every SIGCHLD (and once a
 * second, in case a signal was coalesced away) try to reap it. Node's libuv
 * reaps only the children it spawned itself. A timer keeps the event loop
 * alive; signal listeners alone do not.
 */
export function waitExit(pid: number): Promise<number> {
  const nat = native();
  return new Promise((resolve, reject) => {
    const check = () => {
      const st = nat.reap(pid);
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
