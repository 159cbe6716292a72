/**
 * Release/InRelease files: what a suite contains and the SHA256 of every
 * index, the root of trust below the OpenPGP signature (Debian wiki
 * "DebianRepository/Format").
 *
 * Only text that the signature covered may be parsed: give `parseRelease`
 * the text returned by signature verification, never the raw InRelease.
 * After parsing, `checkFreshness` (Valid-Until, Date) and `checkSuite`
 * still apply: a valid signature on an old or different suite is a replay.
 */
import { VerifyError } from '../../errors.js';
import { parseParagraph } from './deb822.js';

/** One file listed in Release's SHA256 field. */
export interface ReleaseEntry {
  sha256: string;
  size: number;
}

/** The parsed Release file. */
export interface Release {
  origin?: string;
  label?: string;
  /** Archive name, e.g. `stable`, `unstable`, `stable-security`. */
  suite?: string;
  /** Release name, e.g. `trixie`, `sid`, `trixie-security`. */
  codename?: string;
  version?: string;
  date?: Date;
  validUntil?: Date;
  architectures: string[];
  components: string[];
  /** Whether `by-hash/SHA256/<hash>` paths may be used (`Acquire-By-Hash: yes`). */
  acquireByHash: boolean;
  /** `No-Support-for-Architecture-all: Packages`: arch-all packages are in each binary-ARCH index. */
  archAllInArchIndexes: boolean;
  /** Path relative to `dists/SUITE/` → checksum and size. */
  files: Map<string, ReleaseEntry>;
}

/**
 * Parses the (already verified) text of a Release file.
 *
 * @example
 * const rel = parseRelease(signedText);
 * rel.codename            // 'trixie'
 * rel.files.get('main/binary-amd64/Packages.xz') // { sha256: '…', size: 9876543 }
 */
export function parseRelease(text: string): Release {
  const p = parseParagraph(text);
  if (!p.SHA256 && !p.Suite && !p.Codename) {
    throw new VerifyError('cannot parse Release file: no Suite, Codename or SHA256 field');
  }
  const files = new Map<string, ReleaseEntry>();
  for (const line of (p.SHA256 ?? '').split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3) continue;
    const [sha256, size, path] = parts;
    if (!/^[0-9a-f]{64}$/i.test(sha256) || !/^\d+$/.test(size)) {
      throw new VerifyError(`cannot parse Release file: bad SHA256 line \`${line.trim()}\``);
    }
    files.set(path, { sha256: sha256.toLowerCase(), size: Number(size) });
  }
  const words = (s?: string) => (s ?? '').split(/\s+/).filter(Boolean);
  return {
    origin: p.Origin,
    label: p.Label,
    suite: p.Suite,
    codename: p.Codename,
    version: p.Version,
    date: parseDate(p.Date),
    validUntil: parseDate(p['Valid-Until']),
    architectures: words(p.Architectures),
    // Security archive components are written `updates/main` in old releases.
    components: words(p.Components),
    acquireByHash: /^yes$/i.test(p['Acquire-By-Hash'] ?? ''),
    archAllInArchIndexes: /\bPackages\b/.test(p['No-Support-for-Architecture-all'] ?? ''),
    files,
  };
}

function parseDate(s: string | undefined): Date | undefined {
  if (!s) return undefined;
  const d = new Date(s.replace(/\bUTC$/, 'GMT'));
  if (Number.isNaN(d.getTime())) throw new VerifyError(`cannot parse Release file: bad date \`${s}\``);
  return d;
}

/** Options for `checkFreshness`. */
export interface FreshnessOptions {
  /** The current time (tests). */
  now?: Date;
  /** Accept an expired Valid-Until (apt's Check-Valid-Until=no). */
  ignoreValidUntil?: boolean;
  /** How far in the future Date may be, for clock skew (default 10 min). */
  maxClockSkewMs?: number;
}

/**
 * Refuses a Release whose `Valid-Until` has passed, or whose `Date` is in
 * the future, the way apt does.
 *
 * @example
 * checkFreshness(rel, 'sid');  // throws VerifyError when sid's Release has expired
 */
export function checkFreshness(rel: Release, name: string, opts: FreshnessOptions = {}): void {
  const now = opts.now ?? new Date();
  if (rel.validUntil && !opts.ignoreValidUntil && rel.validUntil.getTime() < now.getTime()) {
    throw new VerifyError(`cannot trust Release of \`${name}\`: it expired on ${rel.validUntil.toISOString()} (Valid-Until)`, {
      hint: 'the mirror serves stale data; choose another --mirror, or pass --ignore-valid-until to accept it',
    });
  }
  const skew = opts.maxClockSkewMs ?? 10 * 60_000;
  if (rel.date && rel.date.getTime() > now.getTime() + skew) {
    throw new VerifyError(`cannot trust Release of \`${name}\`: its Date ${rel.date.toISOString()} is in the future`, {
      hint: 'check the system clock',
    });
  }
}

/**
 * Refuses a Release that does not describe the suite that was asked for
 * (a signed Release of another suite served in its place).
 *
 * @example
 * checkSuite(rel, 'stable'); // ok when rel.suite is 'stable' or rel.codename is 'stable'
 */
export function checkSuite(rel: Release, requested: string): void {
  if (requested === rel.suite || requested === rel.codename) return;
  throw new VerifyError(
    `cannot trust Release of \`${requested}\`: it describes \`${rel.codename ?? '?'}\` (${rel.suite ?? '?'})`,
    { hint: 'the mirror serves another suite under this name; check --mirror and --release' },
  );
}

/** Compression suffixes in preference order, with their names. */
export const INDEX_COMPRESSIONS = [
  { ext: '.xz', compression: 'xz' },
  { ext: '.zst', compression: 'zstd' },
  { ext: '.gz', compression: 'gzip' },
  { ext: '', compression: 'none' },
] as const;

export type IndexCompression = (typeof INDEX_COMPRESSIONS)[number]['compression'];

/** A chosen index file and how to fetch and check it. */
export interface IndexChoice {
  /** Path as listed in Release, relative to `dists/SUITE/`. */
  path: string;
  /** Path to fetch, relative to `dists/SUITE/` (the by-hash path when offered). */
  fetchPath: string;
  sha256: string;
  size: number;
  compression: IndexCompression;
  /** Checksum of the uncompressed content, when Release lists it. */
  uncompressed?: ReleaseEntry;
}

/**
 * Chooses the Packages index of a component and architecture: Packages.xz
 * first, then .zst, .gz, plain; the by-hash path when Acquire-By-Hash is on.
 *
 * @example
 * chooseIndex(rel, 'main', 'amd64')
 * // → { path: 'main/binary-amd64/Packages.xz',
 * //     fetchPath: 'main/binary-amd64/by-hash/SHA256/3c1f…', compression: 'xz', … }
 */
export function chooseIndex(rel: Release, component: string, arch: string, base = 'Packages'): IndexChoice | undefined {
  const dir = `${component}/binary-${arch}`;
  const plain = rel.files.get(`${dir}/${base}`);
  for (const { ext, compression } of INDEX_COMPRESSIONS) {
    const path = `${dir}/${base}${ext}`;
    const e = rel.files.get(path);
    if (!e) continue;
    const fetchPath = rel.acquireByHash ? `${dir}/by-hash/SHA256/${e.sha256}` : path;
    return { path, fetchPath, sha256: e.sha256, size: e.size, compression, uncompressed: ext ? plain : undefined };
  }
  return undefined;
}

/**
 * The indexes a bootstrap needs: one per component, for the architecture.
 * Throws a VerifyError naming what is missing (an unknown component or an
 * architecture the suite does not carry).
 *
 * @example
 * packagesIndexes(rel, 'trixie', ['main'], 'amd64').map((c) => c.fetchPath)
 */
export function packagesIndexes(rel: Release, name: string, components: string[], arch: string): IndexChoice[] {
  if (rel.architectures.length && !rel.architectures.includes(arch)) {
    throw new VerifyError(`cannot use \`${name}\` for ${arch}: the suite carries ${rel.architectures.join(', ')}`);
  }
  return components.map((c) => {
    const choice = chooseIndex(rel, c, arch);
    if (!choice) {
      const known = rel.components.length ? rel.components.join(', ') : 'none listed';
      throw new VerifyError(`cannot find ${c}/binary-${arch}/Packages in the Release of \`${name}\` (components: ${known})`);
    }
    return choice;
  });
}

/**
 * Extracts the text of a cleartext-signed message *without* checking the
 * signature — only for `--no-verify`, which warns loudly. Dash-escaping is
 * undone.
 *
 * @example
 * stripClearsign(inRelease).startsWith('Origin: Debian') // true
 */
export function stripClearsign(text: string): string {
  if (!text.startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) return text;
  const lines = text.split(/\r?\n/);
  let i = 1;
  while (i < lines.length && lines[i] !== '') i++; // armor headers (Hash: …)
  const body: string[] = [];
  for (i++; i < lines.length && lines[i] !== '-----BEGIN PGP SIGNATURE-----'; i++) {
    body.push(lines[i].startsWith('- ') ? lines[i].slice(2) : lines[i]);
  }
  return body.join('\n'); // the last line break belongs to the armor (RFC 9580 §7.1)
}
