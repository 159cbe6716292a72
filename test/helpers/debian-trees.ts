/**
 * Real Debian trees with systemd for boot tests. Built once per suite by
 * nsbox's own Debian bootstrap and cached under /var/cache/nsbox/test-trees
 * (refreshed weekly); each test gets a fresh copy.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, chmodSync, writeFileSync } from 'node:fs';
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

/**
 * A fresh copy of a bootable `suite` tree (variant boot, plus `extra`) with
 * root's password set to `password` (null: left locked). Built by nsbox's own Debian engine;
 * NSBOX_TEST_TREES=mmdebstrap (or a failing engine, with a warning) uses
 * mmdebstrap instead.
 */
export async function bootTree(suite: string, password: string | null = 'nsbox-test', extra: string[] = []): Promise<string> {
  mkdirSync(CACHE, { recursive: true });
  const engine = process.env.NSBOX_TEST_TREES !== 'mmdebstrap' && !engineFailed.has(suite);
  const tarball = join(CACHE, `${suite}-boot${extra.length ? `-${extra.join('+')}` : ''}${engine ? '-nsbox' : ''}.tar`);
  const fresh = existsSync(tarball) && Date.now() - statSync(tarball).mtimeMs < WEEK;
  if (!fresh && engine) {
    const { bootstrap } = await import('../../index.js');
    const build = mkdtempSync(join(tmpdir(), `nsbox-build-${suite}-`));
    try {
      await bootstrap({ distribution: 'debian', release: suite, variant: 'boot', include: ['procps', ...extra] }, build, { force: true });
      writeFileSync(join(build, 'etc/hostname'), 'nsbox-test\n');
      execFileSync('tar', ['-C', build, '--xattrs', '--numeric-owner', '-cf', `${tarball}.${process.pid}.tmp`, '.']);
      renameSync(`${tarball}.${process.pid}.tmp`, tarball);
    } catch (e) {
      process.stderr.write(`\n  WARNING: nsbox's engine could not build the ${suite} test tree (${(e as Error).message.split('\n')[0]}); using mmdebstrap\n`);
      engineFailed.add(suite);
      return bootTree(suite, password, extra);
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
  } else if (!fresh) {
    const tmp = `${tarball.slice(0, -4)}.${process.pid}.tmp.tar`; // mmdebstrap picks the format by extension
    execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', `--include=${[...BOOT_PACKAGES, ...extra].join(',')}`,
      '--customize-hook=echo nsbox-test > "$1/etc/hostname"', '--customize-hook=rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"',
      suite, tmp, hostMirror()], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20 * 60_000 });
    renameSync(tmp, tarball);
  }
  const dir = mkdtempSync(join(tmpdir(), `nsbox-${suite}-`));
  chmodSync(dir, 0o755);
  execFileSync('tar', ['-C', dir, '--xattrs', '-xpf', tarball]);
  if (password !== null) execFileSync('chroot', [dir, 'sh', '-c', `echo root:${password} | chpasswd`]);
  return dir;
}

const engineFailed = new Set<string>();

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

/**
 * A fresh copy of a minbase `suite` tree, built once by nsbox's own Debian
 * engine (mmdebstrap when that fails, with a warning) and cached beside the
 * boot trees.
 */
export async function minbaseTree(suite: string): Promise<string> {
  mkdirSync(CACHE, { recursive: true });
  const tarball = join(CACHE, `${suite}-minbase-nsbox.tar`);
  if (!existsSync(tarball) || Date.now() - statSync(tarball).mtimeMs >= WEEK) {
    const build = mkdtempSync(join(tmpdir(), `nsbox-build-${suite}-`));
    try {
      const { bootstrap } = await import('../../index.js');
      await bootstrap({ distribution: 'debian', release: suite, variant: 'minbase' }, join(build, 'minbase'), { force: true });
      execFileSync('tar', ['-C', join(build, 'minbase'), '--xattrs', '--numeric-owner', '-cf', `${tarball}.${process.pid}.tmp`, '.']);
    } catch (e) {
      process.stderr.write(`\n  WARNING: nsbox's engine could not build the ${suite} minbase test tree (${(e as Error).message.split('\n')[0]}); using mmdebstrap\n`);
      execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', suite, `${tarball}.${process.pid}.tmp.tar`, hostMirror()], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20 * 60_000 });
      renameSync(`${tarball}.${process.pid}.tmp.tar`, `${tarball}.${process.pid}.tmp`);
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
    renameSync(`${tarball}.${process.pid}.tmp`, tarball);
  }
  const dir = mkdtempSync(join(tmpdir(), `nsbox-minbase-${suite}-`));
  chmodSync(dir, 0o755);
  execFileSync('tar', ['-C', dir, '--xattrs', '-xpf', tarball]);
  return dir;
}
