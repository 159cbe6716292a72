/**
 * Real Debian trees with systemd for boot tests. Built once per suite and
 * cached under /var/cache/nsbox/test-trees (refreshed weekly); each test
 * gets a fresh copy. Until nsbox's own Debian bootstrap builds them, they
 * come from mmdebstrap (installed by .ci/run) against the host's mirror.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CACHE = '/var/cache/nsbox/test-trees';
const WEEK = 7 * 24 * 3600 * 1000;
/** Packages on top of minbase that a console login and a clean boot need. */
export const BOOT_PACKAGES = ['systemd-sysv', 'dbus', 'login', 'passwd', 'util-linux', 'procps', 'bsdutils'];

/** The host's Debian mirror from its apt configuration (deb822 or one-line). */
export function hostMirror(): string {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)) : [])];
  for (const f of files) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const para of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(para)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(para)?.[1] ?? '';
      if (uri && !/security/.test(suites) && /debian/.test(uri) && !/security/.test(uri)) return uri;
    }
    for (const line of text.split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (m && /debian/.test(m[1]) && !/security/.test(m[1] + m[2])) return m[1];
    }
  }
  throw new Error('no Debian mirror in the host apt configuration');
}

/** A fresh copy of a bootable `suite` tree with root's password set to `password`. */
export function bootTree(suite: string, password = 'nsbox-test', extra: string[] = []): string {
  mkdirSync(CACHE, { recursive: true });
  const tarball = join(CACHE, `${suite}-boot${extra.length ? `-${extra.join('+')}` : ''}.tar`);
  const fresh = existsSync(tarball) && Date.now() - statSync(tarball).mtimeMs < WEEK;
  if (!fresh) {
    const tmp = `${tarball.slice(0, -4)}.${process.pid}.tmp.tar`; // mmdebstrap picks the format by extension
    execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', `--include=${[...BOOT_PACKAGES, ...extra].join(',')}`,
      '--customize-hook=echo nsbox-test > "$1/etc/hostname"', '--customize-hook=rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"',
      suite, tmp, hostMirror()], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20 * 60_000 });
    renameSync(tmp, tarball);
  }
  const dir = mkdtempSync(join(tmpdir(), `nsbox-${suite}-`));
  chmodSync(dir, 0o755);
  execFileSync('tar', ['-C', dir, '--xattrs', '-xpf', tarball]);
  execFileSync('chroot', [dir, 'sh', '-c', `echo root:${password} | chpasswd`]);
  return dir;
}

/** Stops every machine still running on dir (a failed test may leave one), then removes the tree. */
export function removeTree(dir: string): void {
  const machines = '/run/nsbox/machines';
  for (const f of existsSync(machines) ? readdirSync(machines) : []) {
    if (!f.endsWith('.json')) continue;
    try {
      const e = JSON.parse(readFileSync(join(machines, f), 'utf8')) as { directory: string; leader: number; supervisor: number };
      if (e.directory !== dir) continue;
      for (const pid of [e.leader, e.supervisor]) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    } catch { /* not ours */ }
  }
  // the container's mounts vanish with its last process; give the kernel a moment
  execFileSync('sleep', ['0.5']);
  rmSync(dir, { recursive: true, force: true });
}
