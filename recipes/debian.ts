/**
 * Debian distribution knowledge, as data: releases and their aliases,
 * components, variants, the updates and security suites, where the mirror
 * is (the host's own apt configuration), architecture names and the
 * bundled archive keys. The mechanics of the format live in bootstrap/apt/.
 *
 * Variants follow debootstrap's `scripts/debian-common` (`work_out_debs`):
 * minbase is Priority required + apt, the default adds Priority important,
 * buildd adds build-essential; bookworm gets `usr-is-merged` and every
 * release avoids the `usrmerge` migration package, as debootstrap does.
 * Measured against debootstrap 1.0.128 on bookworm and trixie: identical
 * package sets for minbase, important and buildd.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NsboxError, UsageError } from '../errors.js';
import { formatParagraph, parseParagraphs } from '../bootstrap/apt/deb822.js';
import type { SelectionRule } from '../bootstrap/apt/resolve.js';

/** Debian's archive keyring (debian-archive-keyring 2025.1: bullseye, bookworm and trixie keys). */
export const DEBIAN_KEYRING = fileURLToPath(new URL('./keys/debian-archive-keyring.pgp', import.meta.url));

/** Archive areas, in the order apt lists them. */
export const COMPONENTS = ['main', 'contrib', 'non-free', 'non-free-firmware'] as const;

/** What nsbox knows about one release. */
export interface DebianRelease {
  codename: string;
  /** Debian version number, if released. */
  version?: string;
  /** Archive alias as of this nsbox version (the Release file has the last word). */
  alias: 'oldstable' | 'stable' | 'testing' | 'unstable' | 'archived';
  /** `CODENAME-updates` exists on the main mirror. */
  updates: boolean;
  /** `CODENAME-security` exists on the security archive. */
  security: boolean;
  /** debootstrap installs `usr-is-merged` for this release (bookworm only). */
  usrIsMerged?: boolean;
}

/** The built-in release table; the default is the first `stable`. */
export const RELEASES: readonly DebianRelease[] = [
  { codename: 'bookworm', version: '12', alias: 'oldstable', updates: true, security: true, usrIsMerged: true },
  { codename: 'trixie', version: '13', alias: 'stable', updates: true, security: true },
  { codename: 'forky', version: '14', alias: 'testing', updates: false, security: false },
  { codename: 'sid', alias: 'unstable', updates: false, security: false },
];

/** The default release: current stable. */
export const DEFAULT_RELEASE = RELEASES.find((r) => r.alias === 'stable')!.codename;

const known = () => [...RELEASES.map((r) => r.codename), 'stable', 'oldstable', 'testing', 'unstable'].join(', ');

/**
 * Looks a release up by codename or alias in the built-in table.
 * Throws a UsageError listing the known names.
 *
 * @example
 * findRelease('stable').codename // 'trixie'
 * findRelease('unstable').codename // 'sid'
 */
export function findRelease(name: string): DebianRelease {
  const n = name.toLowerCase();
  const r = RELEASES.find((x) => x.codename === n || x.alias === n || x.version === n);
  if (!r) throw new UsageError(`unknown Debian release \`${name}\``, { hint: `known releases: ${known()}` });
  return r;
}

/**
 * The release as the mirror describes it: a Release file's Suite and
 * Codename win over the built-in table (so `stable` follows the archive),
 * and a codename nsbox does not know yet still works with safe defaults.
 *
 * @example
 * releaseFromArchive('stable', { suite: 'stable', codename: 'trixie' }).codename // 'trixie'
 */
export function releaseFromArchive(requested: string, rel: { suite?: string; codename?: string }): DebianRelease {
  const codename = rel.codename ?? requested;
  const builtin = RELEASES.find((x) => x.codename === codename);
  const alias = (['oldstable', 'stable', 'testing', 'unstable'] as const).find((a) => a === rel.suite);
  if (builtin) return { ...builtin, alias: alias ?? builtin.alias };
  const stableish = alias === 'stable' || alias === 'oldstable';
  return { codename, alias: alias ?? 'archived', updates: stableish, security: stableish };
}

/** One variant: what it is for and how its packages are selected. */
export interface Variant {
  name: string;
  description: string;
  rule: SelectionRule;
}

/**
 * The variants. `boot` is minbase plus what `nsbox run -b` needs for a
 * console login: systemd as init (`systemd-sysv`; `login`, `passwd` and
 * util-linux's agetty are in minbase already) and `dbus`. Measured with
 * systemd-nspawn -b on trees built by mmdebstrap: minbase + systemd-sysv
 * alone reaches `is-system-running` = running with a login prompt on
 * bookworm and trixie, but systemd-logind stays inactive without a system
 * bus, so logins get no session (no XDG_RUNTIME_DIR, no `loginctl`);
 * with dbus logind is active, still no failed unit (trixie: 89 packages
 * instead of 82). `--exclude dbus` gives the smaller tree. The set equals
 * apt's (mmdebstrap `--include=systemd-sysv,dbus`) on trixie; on bookworm
 * apt picks `usrmerge` (+ perl) where nsbox, like debootstrap, installs
 * `usr-is-merged`.
 */
export const VARIANTS: Readonly<Record<string, Variant>> = {
  minbase: {
    name: 'minbase',
    description: "Priority required packages and apt (debootstrap's minbase)",
    rule: { priorities: ['required'], essential: true, packages: ['apt'] },
  },
  important: {
    name: 'important',
    description: "required and important packages (debootstrap's default)",
    rule: { priorities: ['required', 'important'], essential: true, packages: [] },
  },
  boot: {
    name: 'boot',
    description: 'minbase with systemd as init: boots with `nsbox run -b` to a console login',
    rule: { priorities: ['required'], essential: true, packages: ['apt', 'systemd-sysv', 'dbus'] },
  },
  buildd: {
    name: 'buildd',
    description: 'minbase with build-essential, for building packages',
    rule: { priorities: ['required'], essential: true, packages: ['apt', 'build-essential'] },
  },
};

export const DEFAULT_VARIANT = 'minbase';

/**
 * A variant by name; a UsageError lists the known ones.
 *
 * @example
 * findVariant('buildd').rule.packages // ['apt', 'build-essential']
 */
export function findVariant(name: string): Variant {
  const v = VARIANTS[name];
  if (!v) throw new UsageError(`unknown variant \`${name}\``, { hint: `known variants: ${Object.keys(VARIANTS).join(', ')}` });
  return v;
}

/**
 * The resolver request of a variant for a release, with debootstrap's
 * per-release adjustments (usr-is-merged on bookworm, never usrmerge).
 *
 * @example
 * selectionFor('minbase', findRelease('bookworm'))
 * // → { rule: {…}, include: ['usr-is-merged'], exclude: ['usrmerge'] }
 */
export function selectionFor(variant: string, release: DebianRelease): { rule: SelectionRule; include: string[]; exclude: string[] } {
  const v = findVariant(variant);
  return { rule: v.rule, include: release.usrIsMerged ? ['usr-is-merged'] : [], exclude: ['usrmerge'] };
}

/** One suite to fetch, and from which archive. */
export interface SuiteSource {
  suite: string;
  /** `main`: the Debian mirror; `security`: the security archive. */
  archive: 'main' | 'security';
}

/**
 * The suites of a bootstrap: the release, then (unless `updates` is false)
 * `CODENAME-updates` on the mirror and `CODENAME-security` on the security
 * archive, for releases that have them — as mmdebstrap does.
 *
 * @example
 * suitesFor(findRelease('trixie')).map((s) => s.suite) // ['trixie', 'trixie-updates', 'trixie-security']
 */
export function suitesFor(release: DebianRelease, opts: { updates?: boolean } = {}): SuiteSource[] {
  const out: SuiteSource[] = [{ suite: release.codename, archive: 'main' }];
  if (opts.updates === false) return out;
  if (release.updates) out.push({ suite: `${release.codename}-updates`, archive: 'main' });
  if (release.security) out.push({ suite: `${release.codename}-security`, archive: 'security' });
  return out;
}

/** An apt source entry (deb822 `.sources` stanza or one `sources.list` line). */
export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  signedBy?: string;
  enabled: boolean;
}

/**
 * Parses apt's deb822 `.sources` text.
 *
 * @example
 * parseSourcesFile('Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie\nComponents: main\n')[0].uris
 */
export function parseSourcesFile(text: string): AptSource[] {
  const words = (s?: string) => (s ?? '').split(/\s+/).filter(Boolean);
  return parseParagraphs(text).map((p) => ({
    types: words(p.Types),
    uris: words(p.URIs),
    suites: words(p.Suites),
    components: words(p.Components),
    signedBy: p['Signed-By'],
    enabled: !/^no$/i.test(p.Enabled ?? 'yes'),
  }));
}

/**
 * Parses one-line `sources.list` text (`deb [opts] URI SUITE COMPONENT…`).
 *
 * @example
 * parseSourcesList('deb [arch=amd64] http://mirror.example/debian trixie main\n')[0].suites // ['trixie']
 */
export function parseSourcesList(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signed = /(?:^|\s)signed-by=(\S+)/.exec(m[2] ?? '');
    out.push({ types: [m[1]], uris: [m[3]], suites: [m[4]], components: m[5].split(/\s+/).filter(Boolean), signedBy: signed?.[1], enabled: true });
  }
  return out;
}

/** Mirrors found in an apt configuration. */
export interface HostMirrors {
  /** The Debian mirror (its URI, no trailing slash). */
  mirror?: string;
  /** The security archive, if configured. */
  security?: string;
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

/**
 * Finds the Debian mirror and security archive in apt sources: a `deb`
 * source whose suites include a `-security` suite is the security archive;
 * the first other `deb` source is the mirror.
 *
 * @example
 * mirrorsFromSources(parseSourcesFile(text)) // { mirror: 'http://mirror.example/debian', security: 'http://mirror.example/debian-security' }
 */
export function mirrorsFromSources(sources: AptSource[]): HostMirrors {
  const out: HostMirrors = {};
  for (const s of sources) {
    if (!s.enabled || !s.types.includes('deb') || !s.uris.length) continue;
    const uri = trimSlash(s.uris[0]);
    if (!/^(https?|file):/.test(uri)) continue;
    if (s.suites.some((x) => /-security$|\/updates$/.test(x))) out.security ??= uri;
    else out.mirror ??= uri;
  }
  return out;
}

/**
 * Reads the host's apt configuration (`/etc/apt/sources.list` and
 * `/etc/apt/sources.list.d/*.sources|*.list`) under `root`.
 *
 * @example
 * hostMirrors().mirror // the mirror this host's apt uses, e.g. 'http://mirror.example/debian'
 */
export function hostMirrors(root = '/'): HostMirrors {
  const etc = join(root, 'etc/apt');
  const sources: AptSource[] = [];
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  sources.push(...parseSourcesList(read(join(etc, 'sources.list'))));
  let files: string[] = [];
  try {
    files = readdirSync(join(etc, 'sources.list.d')).sort();
  } catch {
    /* no directory */
  }
  for (const f of files) {
    const text = read(join(etc, 'sources.list.d', f));
    if (f.endsWith('.sources')) sources.push(...parseSourcesFile(text));
    else if (f.endsWith('.list')) sources.push(...parseSourcesList(text));
  }
  return mirrorsFromSources(sources);
}

/**
 * The security archive beside a mirror: its last `debian` path segment
 * becomes `debian-security` (Debian's mirror network, and snapshot mirrors:
 * `/archive/debian/DATE` → `/archive/debian-security/DATE`). A mirror
 * without such a segment (a proxy at `http://127.0.0.1:3142`, a local
 * mirror at `/repo`) has no sibling to guess: undefined.
 *
 * @example
 * securityMirrorFor('http://mirror.example/debian') // 'http://mirror.example/debian-security'
 * securityMirrorFor('http://127.0.0.1:3142') // undefined
 */
export function securityMirrorFor(mirror: string): string | undefined {
  let u: URL;
  try { u = new URL(mirror); } catch { return undefined; }
  const parts = u.pathname.split('/');
  const i = parts.lastIndexOf('debian');
  if (i < 0) return undefined;
  parts[i] = 'debian-security';
  u.pathname = parts.join('/');
  return trimSlash(u.href);
}

/** The mirror of a bootstrap, and the security archives to try for its security suite. */
export interface ChosenMirrors {
  mirror: string;
  /** In order of preference; the first that serves the suite is used. Empty: none known. */
  security: string[];
}

/**
 * The mirror to use: `--mirror`, else the host's apt configuration. Throws
 * when neither gives one (nsbox has no built-in mirror host). The security
 * archive: the host's own with the host's mirror; with `--mirror`, the
 * mirror's sibling first and the host's configured one after it.
 *
 * @example
 * chooseMirrors({ mirror: 'http://mirror.example/debian' }) // { mirror: '…/debian', security: ['…/debian-security', <the host's>] }
 */
export function chooseMirrors(opts: { mirror?: string; root?: string } = {}): ChosenMirrors {
  const host = hostMirrors(opts.root);
  const mirror = opts.mirror ? trimSlash(opts.mirror) : host.mirror;
  if (!mirror) {
    throw new NsboxError('cannot find a Debian mirror: the host has no apt sources', {
      code: 'usage',
      hint: 'pass --mirror URL (for example http://<your mirror>/debian)',
    });
  }
  const sibling = securityMirrorFor(mirror);
  const order = opts.mirror ? [sibling, host.security] : [host.security, sibling];
  return { mirror, security: [...new Set(order.filter((u): u is string => !!u))] };
}

const ARCHES: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'armhf',
  ia32: 'i386',
  ppc64: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64el',
};

/**
 * Debian's name for a Node.js architecture (default: this machine's).
 *
 * @example
 * debianArch('x64') // 'amd64'
 */
export function debianArch(nodeArch: string = process.arch): string {
  const a = ARCHES[nodeArch];
  if (!a) throw new UsageError(`cannot map architecture \`${nodeArch}\` to Debian`, { hint: `pass --arch (${Object.values(ARCHES).join(', ')})` });
  return a;
}

/**
 * The apt sources of the finished tree, as a deb822 `.sources` file
 * (`/etc/apt/sources.list.d/debian.sources`).
 *
 * @example
 * renderSources({ mirror, security }, suitesFor(findRelease('trixie')), ['main'])
 */
export function renderSources(mirrors: { mirror: string; security?: string }, suites: SuiteSource[], components: string[]): string {
  const stanzas: string[] = [];
  for (const archive of ['main', 'security'] as const) {
    const s = suites.filter((x) => x.archive === archive).map((x) => x.suite);
    if (!s.length || (archive === 'security' && !mirrors.security)) continue;
    stanzas.push(
      formatParagraph({
        Types: 'deb',
        URIs: archive === 'main' ? mirrors.mirror : mirrors.security!,
        Suites: s.join(' '),
        Components: components.join(' '),
        'Signed-By': '/usr/share/keyrings/debian-archive-keyring.gpg',
      }),
    );
  }
  return stanzas.join('\n');
}
