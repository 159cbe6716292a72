/**
 * User namespaces for `-U` / `--private-users`, as systemd-nspawn does them:
 * root inside is a 65536-id range outside, picked free per machine; the
 * tree's ownership follows by an idmapped mount (nothing on disk changes),
 * a chown pass (the shift recorded as the owner of the tree's root), or not
 * at all. The child waits at the rendezvous while the supervisor writes its
 * id maps, moves it into its cgroup and makes the mounts only host root can
 * make (supervise.ts host steps).
 */
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SetupError } from '../errors.js';
import type { RunOptions, UsernsSpec } from './options.js';
import type { ContainerPlan } from './plan.js';
import type { Native } from './native.js';
import { STATE_DIR } from './registry.js';

/** nspawn's pick range: above the first 512 Ki ids, below 0x70000000 (devpts parses gid= as signed). */
export const UID_PICK_MIN = 0x00080000;
export const UID_PICK_MAX = 0x6fff0000;
/** The tree root's owner while a chown pass runs (nspawn's UID_BUSY_BASE). */
export const UID_BUSY_BASE = 0xfffe0000;
export const RANGE = 0x10000;
/** Lock files of the ranges in use, one per base, flock-ed while the container runs. */
export const LOCK_DIR = join(STATE_DIR, 'uid');
/** systemd-nspawn's: a range it holds is not free for nsbox either. */
const NSPAWN_LOCK_DIR = '/run/systemd/nspawn-uid';

/** How the tree's owners are made to fit the range. */
export type Ownership = 'map' | 'chown' | 'off';

export interface UsernsSetup {
  shift: number;
  count: number;
  ownership: Ownership;
  /** Guard entries (the lock file) for runtime/native/guard.c. */
  guardEntries: string[];
  /** Drops the range's lock (and its file). */
  release(): void;
}

/** FNV-1a of a string: stable across runs and machines (no node:crypto on the run path). */
function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d) >>> 0; h ^= h >>> 12;
  return h >>> 0;
}

/**
 * The bases `pick` tries, in order: the one recorded in the tree (its root's
 * owner, after a chown pass), then a sequence hashed from the machine name,
 * so a machine gets the same range run after run while it is free.
 *
 * @example
 * pickCandidates('web', { uid: 0, gid: 0 }, 3) // three multiples of 65536 in [0x80000, 0x6fff0000], the same every time
 */
export function pickCandidates(machine: string, root: { uid: number; gid: number }, n = 100): number[] {
  const out: number[] = [];
  const recorded = (root.uid & 0xffff0000) >>> 0;
  if ((root.uid & 0xffff) === 0 && recorded === ((root.gid & 0xffff0000) >>> 0) && recorded >= UID_PICK_MIN && recorded <= UID_PICK_MAX) out.push(recorded);
  const slots = (UID_PICK_MAX - UID_PICK_MIN) / RANGE + 1;
  for (let i = 0; out.length < n && i < n * 4; i++) {
    const base = UID_PICK_MIN + (fnv(`${machine}\0${i}`) % slots) * RANGE;
    if (!out.includes(base)) out.push(base);
  }
  return out;
}

/** Ids the host's user and group databases use. */
function hostIds(): number[] {
  const ids: number[] = [];
  for (const f of ['/etc/passwd', '/etc/group']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n')) { const id = Number(line.split(':')[2]); if (Number.isInteger(id)) ids.push(id); }
  }
  return ids;
}

/** Real uids of the host's running processes (other managers' containers show here). */
function processUids(): Set<number> {
  const uids = new Set<number>();
  let pids: string[] = [];
  try { pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)); } catch { return uids; }
  for (const p of pids) {
    try {
      const m = /\nUid:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) uids.add(Number(m[1]));
    } catch { /* gone */ }
  }
  return uids;
}

/**
 * Why [base, base+count) is not free, or undefined: held by systemd-nspawn
 * (its lock file), used by the host's passwd or group database, or the uid
 * of a running process. nsbox's own containers hold their base's lock file
 * (taken before this check), so two never share a range.
 */
export function rangeBusy(nat: Native, base: number, count: number, ids = hostIds(), procs = processUids()): string | undefined {
  if (nat.lockHeld(join(NSPAWN_LOCK_DIR, String(base)))) return 'systemd-nspawn uses it';
  const inRange = (id: number) => id >= base && id < base + count;
  const id = ids.find(inRange);
  if (id !== undefined) return `the host's user database has id ${id}`;
  for (const u of procs) if (inRange(u)) return `a host process runs as uid ${u}`;
  return undefined;
}

/** Takes the lock of base; undefined if another container holds it. */
function lockRange(nat: Native, base: number, token: string): { fd: number; path: string } | undefined {
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o755 });
  const path = join(LOCK_DIR, String(base));
  const fd = nat.lockFile(path, token);
  if (fd === -16 /* EBUSY */) return undefined;
  if (fd < 0) throw new SetupError(`cannot lock the uid range ${base} (\`${path}\`): errno ${-fd}`, { exitCode: 125 });
  return { fd, path };
}

/**
 * Chooses the range and how the tree's ownership follows, taking the
 * range's lock. Nothing is changed on disk here (the chown pass, if any,
 * runs later: applyOwnership).
 */
export function prepareUserns(opts: RunOptions, machine: string, token: string, nat: Native, warn: (l: string) => void): UsernsSetup {
  const spec = opts.userns as UsernsSpec;
  const tree = opts.directory;
  const st = statSync(tree);
  const treeBase = (st.uid & 0xffff0000) >>> 0;
  let shift: number, lock: { fd: number; path: string } | undefined;
  if (spec.mode === 'pick') {
    const ids = hostIds(), procs = processUids();
    for (const base of pickCandidates(machine, { uid: st.uid, gid: st.gid })) {
      lock = lockRange(nat, base, token);
      if (!lock) continue;
      if (!rangeBusy(nat, base, RANGE, ids, procs)) { shift = base; break; }
      releaseLock(nat, lock);
      lock = undefined;
    }
    if (lock === undefined) {
      throw new SetupError('cannot pick a uid range for -U: every candidate range is in use', { hint: 'stop other containers, or give one with --private-users=UID', exitCode: 125 });
    }
  } else if (spec.mode === 'tree') {
    if (treeBase !== ((st.gid & 0xffff0000) >>> 0) || treeBase === UID_BUSY_BASE) {
      throw new SetupError(`cannot take the uid range from \`${tree}\`: its owner ${st.uid}:${st.gid} is not the base of one range`, { hint: 'use --private-users=pick or UID', exitCode: 125 });
    }
    shift = treeBase;
  } else shift = spec.shift!;
  const base = shift!;
  const count = spec.count;
  const ephemeral = opts.ephemeral || opts.volatile === 'overlay';
  const shiftedAlready = (st.uid >>> 0) === base && (st.gid >>> 0) === base;
  let ownership: Ownership;
  const probe = () => {
    const r = nat.idmapProbe(tree);
    if (r <= -0x10000) {
      throw new SetupError(`cannot use -U: the kernel refuses to create a user namespace (errno ${-r - 0x10000})`, {
        hint: 'check that user namespaces are enabled (CONFIG_USER_NS, /proc/sys/user/max_user_namespaces)', exitCode: 125,
      });
    }
    return r;
  };
  const cannotMap = (errno: number) => `\`${tree}\` cannot be idmapped (${errno === -22 ? 'its file system does not support idmapped mounts' : `errno ${-errno}`})`;
  try {
    // asked once, first: a kernel without user namespaces fails here, before anything changes
    const mapped = probe();
    if (spec.ownership === 'off') ownership = 'off';
    else if (spec.ownership === 'chown') ownership = shiftedAlready ? 'off' : 'chown';
    else if (spec.ownership === 'map') {
      if (treeBase !== 0) throw new SetupError(`cannot idmap \`${tree}\`: its files are owned by the shifted range ${treeBase}, not by 0…65535`, { hint: 'use --private-users-ownership=chown (or chown it back with --private-users=0 --private-users-ownership=chown)', exitCode: 125 });
      const r = mapped;
      if (r < 0) throw new SetupError(`cannot run with --private-users-ownership=map: ${cannotMap(r)}`, { hint: 'use --private-users-ownership=chown or auto', exitCode: 125 });
      ownership = 'map';
    } else if (shiftedAlready) ownership = 'off';
    else {
      const r = treeBase === 0 ? mapped : -1;
      if (r === 0) ownership = 'map';
      else {
        ownership = 'chown';
        if (!ephemeral) warn(`nsbox: ${treeBase === 0 ? cannotMap(r) : `\`${tree}\` is owned by the range ${treeBase}`}: shifting its owners to ${base} instead (chown)`);
      }
    }
    if (ephemeral && ownership === 'chown') {
      throw new SetupError(`cannot shift the owners of \`${tree}\` for -U: ${treeBase === 0 ? cannotMap(mapped) : `it is owned by the range ${treeBase}`}, and an ephemeral run must not change the tree`, {
        hint: 'run once without -x to chown it, or put the tree on a file system with idmapped mounts (ext4, xfs, btrfs, tmpfs)', exitCode: 125,
      });
    }
  } catch (e) {
    if (lock) releaseLock(nat, lock);
    throw e;
  }
  const held = lock;
  return {
    shift: base, count, ownership,
    guardEntries: held ? [`l${held.path}\t${token}`] : [],
    release: () => { if (held) releaseLock(nat, held); },
  };
}

function releaseLock(nat: Native, lock: { fd: number; path: string }): void {
  try { unlinkSync(lock.path); } catch { /* gone */ }
  nat.close(lock.fd);
}

/** The chown pass (`chown` ownership): announced, since it can take a while on a big tree. */
export function applyOwnership(setup: UsernsSetup, tree: string, nat: Native, log: (l: string) => void): void {
  if (setup.ownership !== 'chown') return;
  log(`Shifting the owners of ${tree} to ${setup.shift}…`);
  nat.chownTree(tree, setup.shift);
}

/** Files of a cgroup that its delegate must own (systemd's cgroup delegation rules, as nspawn applies them). */
const DELEGATED = ['cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control', 'memory.oom.group', 'memory.reclaim'];

/**
 * The host steps of a -U container, run at the rendezvous: its id maps, its
 * cgroup (moved in and handed to its root), and the detached mounts the plan
 * asks for (passed_fds[0…] in the child). `afterStart` closes our copies.
 */
export function usernsSteps(plan: ContainerPlan, nat: Native): { step: (pid: number) => number[]; afterStart: () => void } {
  const u = plan.userns!;
  const made: number[] = [];
  return {
    step(pid) {
      const map = `0 ${u.uidShift} ${u.uidCount}\n`;
      writeFileSync(`/proc/${pid}/uid_map`, map);
      writeFileSync(`/proc/${pid}/gid_map`, map);
      if (u.cgroup) {
        writeFileSync(join(u.cgroup, 'cgroup.procs'), String(pid));
        chownSync(u.cgroup, u.uidShift, u.uidShift);
        for (const f of DELEGATED) { const p = join(u.cgroup, f); if (existsSync(p)) chownSync(p, u.uidShift, u.uidShift); }
      }
      try {
        for (const m of u.mounts) made.push(m.kind === 'sysfs' ? nat.sysfsMount() : nat.cloneMount(m.source, pid, { recursive: m.recursive, readonly: m.readonly, idmap: m.idmap }));
      } catch (e) {
        for (const fd of made.splice(0)) nat.close(fd);
        throw e;
      }
      return [...made];
    },
    afterStart() { for (const fd of made.splice(0)) nat.close(fd); },
  };
}
