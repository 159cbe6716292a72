/**
 * Running machines, by name, under /run/nsbox/machines. An entry is valid
 * only while the supervisor that wrote it lives (pid and start time match),
 * so a supervisor that was killed never leaves a machine that `list` shows
 * or whose name cannot be taken again.
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NsboxError } from '../errors.js';

export const STATE_DIR = process.env.NSBOX_STATE_DIR ?? '/run/nsbox';
export const MACHINES_DIR = join(STATE_DIR, 'machines');

export interface MachineEntry {
  name: string;
  /** Host pid of the container's first process (init with --boot). */
  leader: number;
  supervisor: number;
  supervisorStart: string;
  directory: string;
  boot: boolean;
  started: string;
  uuid: string;
  cgroup?: string;
  /** The container's capability set (hex), for processes that join it. */
  capabilities?: string;
  /** Unique per instance: the cleanup guard removes the entry only while it holds this token. */
  token: string;
}

/** Start time of a process (field 22 of /proc/PID/stat), or undefined if it is gone. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited: its parent just has not reaped it yet.
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch { return undefined; }
}

export function entryPath(name: string): string { return join(MACHINES_DIR, `${name}.json`); }

function alive(e: MachineEntry): boolean {
  return processStart(e.supervisor) === e.supervisorStart;
}

function readEntry(path: string): MachineEntry | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as MachineEntry; } catch { return undefined; }
}

export class NameTakenError extends NsboxError {
  constructor(name: string, e: MachineEntry) {
    super(`machine name \`${name}\` is already running (supervisor pid ${e.supervisor}, tree ${e.directory})`, {
      code: 'name-taken', hint: `stop it with \`nsbox stop ${name}\` or pick another name with -M`,
    });
  }
}

/** Claims a name atomically (link(2) fails if it exists); a stale entry is replaced. */
export function claim(entry: MachineEntry): void {
  mkdirSync(MACHINES_DIR, { recursive: true, mode: 0o755 });
  const path = entryPath(entry.name);
  const tmp = `${path}.${entry.token}.tmp`;
  const fd = openSync(tmp, 'wx', 0o644);
  writeSync(fd, JSON.stringify(entry) + '\n');
  closeSync(fd);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try { linkSync(tmp, path); return; } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const other = readEntry(path);
      if (other && alive(other)) throw new NameTakenError(entry.name, other);
      try { unlinkSync(path); } catch { /* raced with another cleaner */ }
    }
    throw new NsboxError(`cannot register machine \`${entry.name}\``);
  } finally {
    try { unlinkSync(tmp); } catch { /* gone */ }
  }
}

/**
 * Claims `entry.name`, or with `pick` the first free one of NAME, NAME-2,
 * NAME-3… (shortened to stay a valid machine name): several containers of
 * one tree run at once without -M. Returns the name claimed; `make` builds
 * the entry for a candidate name.
 */
export function claimFree(base: string, pick: boolean, make: (name: string) => MachineEntry): MachineEntry {
  for (let n = 1; ; n++) {
    const suffix = n === 1 ? '' : `-${n}`;
    const entry = make(base.slice(0, 64 - suffix.length).replace(/[-_.]+$/, '') + suffix);
    try { claim(entry); return entry; } catch (e) {
      if (!pick || !(e instanceof NameTakenError) || n >= 4096) throw e;
    }
  }
}

/** Rewrites our own entry (e.g. with the leader pid once known). */
export function update(entry: MachineEntry): void {
  const path = entryPath(entry.name);
  const tmp = `${path}.${entry.token}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  writeSync(fd, JSON.stringify(entry) + '\n');
  closeSync(fd);
  // rename over our own entry: readers see the old or the new, never half.
  renameSync(tmp, path);
}

/** Removes our entry if it is still ours. */
export function release(entry: MachineEntry): void {
  const path = entryPath(entry.name);
  const cur = readEntry(path);
  if (cur && cur.token === entry.token) { try { unlinkSync(path); } catch { /* gone */ } }
}

/** Running machines; stale entries (dead supervisors) are removed on the way. */
export function list(): MachineEntry[] {
  let names: string[];
  try { names = readdirSync(MACHINES_DIR); } catch { return []; }
  const out: MachineEntry[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const path = join(MACHINES_DIR, n);
    const e = readEntry(path);
    if (!e) continue;
    if (alive(e)) out.push(e);
    else { try { unlinkSync(path); } catch { /* raced */ } }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** A running machine by name, or a clear error. */
export function find(name: string): MachineEntry {
  const e = readEntry(entryPath(name));
  if (!e || !alive(e)) {
    throw new NsboxError(`no running machine named \`${name}\``, { code: 'not-found', hint: 'see running machines with `nsbox list`' });
  }
  return e;
}
