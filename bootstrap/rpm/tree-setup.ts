/**
 * The files a Fedora tree gets around the package installation: the
 * repository configuration for the mirror it was built from, the
 * package manager's `releasever`, an empty machine-id, and the build's
 * leftovers removed (what `dnf --installroot` followed by mkosi's cleanup
 * leaves: no package caches, no logs of the build, no rpm lock or
 * Berkeley DB environment files).
 */
import { copyFile, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FedoraRelease } from '../../recipes/fedora.js';

/** How the finished tree should reach its repositories. */
export interface RepoConfig {
  /** Mirror root (Fedora layout) the tree was built from, when --mirror was given. */
  mirror?: string;
  /** Metalink template (with $repo, $basearch, $releasever), when --metalink was given. */
  metalink?: string;
  /** Keyring the build trusted instead of the release's key (--keyring), copied into the tree. */
  keyring?: string;
}

const REPOS_DIR = 'etc/yum.repos.d';
const KEY_IN_TREE = '/etc/pki/rpm-gpg/RPM-GPG-KEY-nsbox-bootstrap';

/**
 * Points the tree's dnf/yum at the mirror or metalink the tree was built
 * from. Nothing to do for Fedora's default metalinks: fedora-repos' own
 * files already say that. Otherwise the `[fedora]` and `[updates]`
 * sections of the shipped .repo files are rewritten in place (the way an
 * administrator points Fedora at a mirror; rpm -V marks them as changed
 * configuration), or written when the tree ships none. Returns the files
 * written.
 *
 * @example
 * await writeRepoConfig('/srv/f40', fedoraRelease('40'), { mirror: 'http://mirror.example/fedora/linux/' });
 */
export async function writeRepoConfig(dir: string, rel: FedoraRelease, cfg: RepoConfig): Promise<string[]> {
  if (!cfg.mirror && !cfg.metalink && !cfg.keyring) return [];
  let gpgkey: string | undefined;
  if (cfg.keyring) {
    await mkdir(join(dir, 'etc/pki/rpm-gpg'), { recursive: true, mode: 0o755 });
    await copyFile(cfg.keyring, join(dir, KEY_IN_TREE));
    gpgkey = `file://${KEY_IN_TREE}`;
  }
  const sources = sourcesFor(rel, cfg);
  await mkdir(join(dir, REPOS_DIR), { recursive: true, mode: 0o755 });
  const seen = new Set<string>();
  const written: string[] = [];
  for (const name of (await readdir(join(dir, REPOS_DIR)).catch(() => [] as string[])).filter((n) => n.endsWith('.repo')).sort()) {
    const path = join(dir, REPOS_DIR, name);
    const text = await readFile(path, 'utf8');
    const out = rewriteRepoFile(text, sources, gpgkey, seen);
    if (out !== text) {
      await writeFile(path, out);
      written.push(`/${REPOS_DIR}/${name}`);
    }
  }
  for (const [id, src] of Object.entries(sources)) {
    if (seen.has(id)) continue;
    const file = id === 'fedora' ? 'fedora.repo' : `fedora-${id}.repo`;
    const body = [
      `[${id}]`, `name=Fedora $releasever - $basearch${id === 'fedora' ? '' : ` - ${id[0]!.toUpperCase()}${id.slice(1)}`}`, src,
      'enabled=1', 'metadata_expire=7d', 'repo_gpgcheck=0', 'type=rpm', 'gpgcheck=1',
      `gpgkey=${gpgkey ?? 'file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch'}`, 'skip_if_unavailable=False', '',
    ].join('\n');
    await writeFile(join(dir, REPOS_DIR, file), body, { mode: 0o644 });
    written.push(`/${REPOS_DIR}/${file}`);
  }
  return written;
}

/** The `baseurl=`/`metalink=` line of each repository id, with dnf's variables. */
function sourcesFor(rel: FedoraRelease, cfg: RepoConfig): Record<string, string> {
  if (cfg.mirror) {
    const root = cfg.mirror.endsWith('/') ? cfg.mirror : `${cfg.mirror}/`;
    if (rel.rawhide) return { fedora: `baseurl=${root}development/rawhide/Everything/$basearch/os/` };
    return {
      fedora: `baseurl=${root}releases/$releasever/Everything/$basearch/os/`,
      updates: `baseurl=${root}${rel.number >= 28 ? 'updates/$releasever/Everything/$basearch/' : 'updates/$releasever/$basearch/'}`,
    };
  }
  if (cfg.metalink) {
    const link = (repo: string) => `metalink=${cfg.metalink!.replace('$repo', repo)}`;
    if (rel.rawhide) return { fedora: link('rawhide') };
    return { fedora: link('fedora-$releasever'), updates: link('updates-released-f$releasever') };
  }
  return {};
}

/** Replaces the source lines (and gpgkey, when given) of the sections named in `sources`. */
function rewriteRepoFile(text: string, sources: Record<string, string>, gpgkey: string | undefined, seen: Set<string>): string {
  const out: string[] = [];
  let section: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (m) {
      section = m[1];
      out.push(line);
      if (section && section in sources) {
        seen.add(section);
        out.push(sources[section]!);
      }
      continue;
    }
    if (section && section in sources) {
      if (/^\s*#?\s*(baseurl|metalink|mirrorlist)\s*=/.test(line)) continue;
      if (gpgkey && /^\s*gpgkey\s*=/.test(line)) { out.push(`gpgkey=${gpgkey}`); continue; }
    }
    out.push(line);
  }
  return out.join('\n');
}

/**
 * Tells the release's package manager its `releasever` (dnf and dnf5:
 * /etc/dnf/vars; yum, Fedora 19–21: /etc/yum/vars).
 */
export async function writeReleasever(dir: string, rel: FedoraRelease): Promise<string> {
  const vars = rel.packageManager === 'yum' ? 'etc/yum/vars' : 'etc/dnf/vars';
  await mkdir(join(dir, vars), { recursive: true, mode: 0o755 });
  await writeFile(join(dir, vars, 'releasever'), `${rel.releasever}\n`, { mode: 0o644 });
  return `/${vars}/releasever`;
}

/** Files and directories of the build that do not belong in the finished tree. */
const LEFTOVERS = [
  'var/cache/dnf', 'var/cache/yum', 'var/cache/libdnf5', 'var/log/dnf.log', 'var/log/dnf.librepo.log', 'var/log/dnf.rpm.log',
  'var/log/hawkey.log', 'var/log/yum.log', 'var/lib/rpm/.rpm.lock', 'var/lib/rpm/.dbenv.lock', 'usr/lib/sysimage/rpm/.rpm.lock',
  'var/cache/ldconfig/aux-cache', 'var/lib/dbus/machine-id',
];

/**
 * Cleans the finished tree: caches and logs of the build, rpm's Berkeley
 * DB environment (`__db.*`, rebuilt on first use), an empty resolv.conf
 * mount point; writes an empty machine-id (machine-id(5): generated on
 * first boot). /run and /tmp are left alone: they are tmpfs while the build
 * runs inside the tree, so nothing of the build lands there, and what
 * packages ship there must stay for rpm -V.
 */
export async function cleanTree(dir: string): Promise<void> {
  for (const f of LEFTOVERS) await rm(join(dir, f), { recursive: true, force: true });
  for (const db of ['var/lib/rpm', 'usr/lib/sysimage/rpm']) {
    for (const n of await readdir(join(dir, db)).catch(() => [] as string[])) if (n.startsWith('__db.')) await rm(join(dir, db, n), { force: true });
  }
  try {
    const st = await lstat(join(dir, 'etc/resolv.conf'));
    if (st.isFile() && st.size === 0) await rm(join(dir, 'etc/resolv.conf'));
  } catch {
    /* none */
  }
  await rm(join(dir, 'etc/machine-id'), { force: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  await writeFile(join(dir, 'etc/machine-id'), '', { mode: 0o444 });
}
