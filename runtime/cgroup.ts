/**
 * The container's cgroup: a child of nsbox's own cgroup in the cgroup2
 * hierarchy, wherever the host mounts it (/sys/fs/cgroup on pure cgroup2
 * hosts, /sys/fs/cgroup/unified on hybrid ones). The container's init is
 * moved in before it unshares its cgroup namespace, so that directory is
 * what the container sees as its root.
 */
import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where cgroup2 is mounted, or undefined if the host has none. */
export function cgroup2Mount(): string | undefined {
  let info: string;
  try { info = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return undefined; }
  let best: string | undefined;
  for (const line of info.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    if (line.slice(sep + 3).split(' ')[0] !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4].replace(/\\040/g, ' ');
    if (!best || mountPoint === '/sys/fs/cgroup') best = mountPoint;
  }
  return best;
}

/** This process's cgroup2 path ("0::/path" in /proc/self/cgroup). */
export function ownCgroup(): string {
  const text = readFileSync('/proc/self/cgroup', 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3) : '/';
}

/** Device access rules for the container: [type, major, minor (-1 any), access]. */
const CHAR = 2, READ = 2, WRITE = 4, MKNOD = 1;
export const DEVICE_RULES: [number, number, number, number][] = [
  [CHAR, 1, 3, READ | WRITE | MKNOD], [CHAR, 1, 5, READ | WRITE | MKNOD], [CHAR, 1, 7, READ | WRITE | MKNOD],
  [CHAR, 1, 8, READ | WRITE | MKNOD], [CHAR, 1, 9, READ | WRITE | MKNOD],
  [CHAR, 5, 0, READ | WRITE | MKNOD], [CHAR, 5, 1, READ | WRITE | MKNOD], [CHAR, 5, 2, READ | WRITE | MKNOD],
  [CHAR, 136, -1, READ | WRITE | MKNOD], [CHAR, 137, -1, READ | WRITE | MKNOD], [CHAR, 138, -1, READ | WRITE | MKNOD], [CHAR, 139, -1, READ | WRITE | MKNOD],
  [CHAR, 10, 200, READ | WRITE | MKNOD],
];

/** Creates `<mount><own>/nsbox/<leaf>` and returns its host path. */
export function createContainerCgroup(mount: string, leaf: string): string {
  const own = ownCgroup();
  const dir = join(mount, own, 'nsbox', leaf);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Removes a cgroup directory and everything the container made below it. */
export function removeCgroup(dir: string): boolean {
  const rm = (d: string): void => {
    let entries: import('node:fs').Dirent[] = [];
    try { entries = readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries) if (e.isDirectory()) rm(join(d, e.name));
    rmdirSync(d);
  };
  for (let i = 0; i < 50; i++) {
    try { rm(dir); return true; } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      if (i === 0) { try { writeFileSync(join(dir, 'cgroup.kill'), '1'); } catch { /* older kernel */ } }
      if (process.env.NSBOX_DEBUG_CGROUP) process.stderr.write(`rmdir retry ${i}: ${(e as Error).message}\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(2 << i, 50)); // processes still exiting
    }
  }
  return false;
}

/** Removes what a container's init made below its cgroup (before a reboot). */
export function removeCgroupChildren(dir: string): void {
  let entries: import('node:fs').Dirent[] = [];
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) if (e.isDirectory()) removeCgroup(join(dir, e.name));
}
