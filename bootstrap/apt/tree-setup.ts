/**
 * The files a Debian tree needs around the package installation, and their
 * removal afterwards. Follows debootstrap (`scripts/debian-common`,
 * `functions`: setup_merged_usr, the fake start-stop-daemon and
 * policy-rc.d) and mmdebstrap (`run_setup`, `setup_mounts`, `run_cleanup`):
 *
 * - before extraction: merged-/usr symlinks (debootstrap's per-arch list),
 *   dpkg's database skeleton (empty `status` and `available`, `arch`,
 *   `info/`, `triggers/`, `updates/`, `alternatives/`), apt's directories;
 * - after extraction, before dpkg runs: `policy-rc.d` answering 101 and
 *   start-stop-daemon (and initctl, where a package ships one) replaced by
 *   a no-op through a real dpkg diversion, so that dpkg installing the
 *   `dpkg` package keeps the no-op in place — no service starts;
 * - at the end: those undone, apt sources, an empty machine-id, hostname,
 *   and caches, lists and logs of the build removed.
 */
import { lstat, mkdir, readFile, readdir, rename, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';

/** debootstrap's `setup_merged_usr`: the per-architecture library directories besides bin, sbin, lib. */
const LIB_LINKS: Record<string, string[]> = {
  amd64: ['lib32', 'lib64', 'libx32'],
  i386: ['lib64', 'libx32'],
  mips64el: ['lib32', 'lib64', 'libo32'],
  loong64: ['lib32', 'lib64'],
  ppc64el: ['lib64'],
  s390x: ['lib32'],
};

/** The merged-/usr aliases debootstrap creates for `arch` (`bin` → `usr/bin`, …). */
export function mergedUsrLinks(arch: string): string[] {
  return ['bin', 'sbin', 'lib', ...(LIB_LINKS[arch] ?? [])];
}

/** Creates what must exist before the first package is extracted. */
export async function prepareTree(dir: string, arch: string): Promise<void> {
  for (const d of mergedUsrLinks(arch)) {
    await mkdir(join(dir, 'usr', d), { recursive: true, mode: 0o755 });
    await symlink(`usr/${d}`, join(dir, d)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
  for (const d of [
    'var/lib/dpkg/info', 'var/lib/dpkg/triggers', 'var/lib/dpkg/updates', 'var/lib/dpkg/alternatives',
    'etc/apt/apt.conf.d', 'etc/apt/sources.list.d', 'etc/apt/preferences.d', 'etc/dpkg/dpkg.cfg.d',
    'var/lib/apt/lists/partial', 'var/cache/apt/archives/partial', 'var/log/apt', 'var/lib/nsbox',
  ]) {
    await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
  }
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  await writeFile(join(dir, 'var/lib/dpkg/status'), '');
  await writeFile(join(dir, 'var/lib/dpkg/available'), '');
  await writeFile(join(dir, 'var/lib/dpkg/arch'), `${arch}\n`);
}

const POLICY_RC_D = 'usr/sbin/policy-rc.d';
const FAKE = '#!/bin/sh\necho "Warning: Fake $(basename "$0") called, doing nothing (nsbox bootstrap)" >&2\nexit 0\n';
const DIVERT_SUFFIX = '.nsbox-real';

/**
 * Stops services from starting while packages are configured. `shipped`
 * are the package paths of start-stop-daemon/initctl found while
 * extracting (`/usr/sbin/start-stop-daemon` on trixie, `/sbin/…` on bookworm).
 * Returns the diverted paths (for `allowServices`).
 */
export async function preventServices(dir: string, shipped: string[]): Promise<string[]> {
  await writeFile(join(dir, POLICY_RC_D), '#!/bin/sh\n# nsbox bootstrap: no service starts while the tree is built\nexit 101\n', { mode: 0o755 });
  const entries: string[] = [];
  for (const path of shipped) {
    const host = join(dir, path);
    await rename(host, host + DIVERT_SUFFIX);
    await writeFile(host, FAKE, { mode: 0o755 });
    entries.push(`${path}\n${path}${DIVERT_SUFFIX}\n:\n`);
  }
  // A local diversion (package ":"), exactly what `dpkg-divert --local --rename` records.
  if (entries.length) await writeFile(join(dir, 'var/lib/dpkg/diversions'), entries.join(''));
  return shipped;
}

/** Undoes preventServices: the real programs back, the diversions and policy-rc.d gone. */
export async function allowServices(dir: string, diverted: string[]): Promise<void> {
  await rm(join(dir, POLICY_RC_D), { force: true });
  const file = join(dir, 'var/lib/dpkg/diversions');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    /* none */
  }
  const lines = text.split('\n');
  const kept: string[] = [];
  for (let i = 0; i + 2 < lines.length; i += 3) {
    const [from, to, pkg] = lines.slice(i, i + 3);
    if (pkg === ':' && diverted.includes(from) && to === from + DIVERT_SUFFIX) continue;
    kept.push(`${from}\n${to}\n${pkg}\n`);
  }
  for (const path of diverted) {
    const host = join(dir, path);
    try {
      await lstat(host + DIVERT_SUFFIX);
      await rename(host + DIVERT_SUFFIX, host);
    } catch {
      /* already restored */
    }
  }
  await writeFile(file, kept.join(''));
}

/** Files of the build that do not belong in the finished tree (mmdebstrap's cleanup list, plus ours). */
const BUILD_FILES = [
  'var/log/dpkg.log', 'var/log/alternatives.log', 'var/log/apt/history.log', 'var/log/apt/term.log', 'var/log/apt/eipp.log.xz',
  'var/cache/ldconfig/aux-cache', 'var/lib/dbus/machine-id', 'var/lib/dpkg/available-old', 'var/lib/dpkg/status-old',
  'var/lib/dpkg/diversions-old', 'var/cache/debconf/config.dat-old', 'var/cache/debconf/templates.dat-old',
  'var/cache/debconf/passwords.dat-old',
];

/**
 * Cleans the finished tree: apt lists and caches, build logs, leftovers in
 * /run and /tmp, an empty resolv.conf mount point; writes an empty
 * machine-id (machine-id(5): generated on first boot) and the hostname.
 */
export async function cleanTree(dir: string, hostname: string): Promise<void> {
  for (const f of BUILD_FILES) await rm(join(dir, f), { force: true });
  await emptyDir(join(dir, 'var/lib/apt/lists'), ['partial', 'lock']);
  await emptyDir(join(dir, 'var/lib/apt/lists/partial'), []);
  await emptyDir(join(dir, 'var/cache/apt/archives'), ['partial', 'lock']);
  await emptyDir(join(dir, 'var/cache/apt/archives/partial'), []);
  for (const f of await readdir(join(dir, 'var/cache/apt')).catch(() => [] as string[])) {
    if (f.endsWith('.bin')) await rm(join(dir, 'var/cache/apt', f), { force: true });
  }
  await emptyDir(join(dir, 'run'), ['lock']);
  await emptyDir(join(dir, 'tmp'), []);
  // The runtime bind-mounts the host's resolv.conf during the build; a file left as its mount point goes.
  try {
    const st = await lstat(join(dir, 'etc/resolv.conf'));
    if (st.isFile() && st.size === 0) await rm(join(dir, 'etc/resolv.conf'));
  } catch {
    /* none */
  }
  await rm(join(dir, 'etc/machine-id'), { force: true });
  await writeFile(join(dir, 'etc/machine-id'), '', { mode: 0o444 });
  await writeFile(join(dir, 'etc/hostname'), `${hostname}\n`, { mode: 0o644 });
}

async function emptyDir(path: string, keep: string[]): Promise<void> {
  let names: string[];
  try {
    names = await readdir(path);
  } catch {
    return;
  }
  for (const n of names) if (!keep.includes(n)) await rm(join(path, n), { recursive: true, force: true });
}
