/**
 * The package universe of a bootstrap: every installable package of one
 * architecture (plus `Architecture: all`) from one or more Packages indexes,
 * one candidate per name — the newest version wins across suites, as apt's
 * candidate with equal pins (so `trixie-security` overrides `trixie`).
 */
import type { Paragraph } from './deb822.js';
import { parseProvides, parseRelations, type Alternatives, type Provide } from './relations.js';
import { compareVersions } from './version.js';

/** The index fields the resolver and the fetcher use (pass to the parser's `fields`). */
export const PACKAGE_FIELDS: ReadonlySet<string> = new Set([
  'Package', 'Version', 'Architecture', 'Multi-Arch', 'Priority', 'Essential', 'Source',
  'Depends', 'Pre-Depends', 'Recommends', 'Conflicts', 'Breaks', 'Provides',
  'Filename', 'Size', 'SHA256', 'Installed-Size',
]);

/** One binary package version from an index. */
export interface PackageInfo {
  name: string;
  version: string;
  /** `amd64`, `all`, … */
  arch: string;
  multiArch: 'no' | 'same' | 'foreign' | 'allowed';
  priority: string;
  essential: boolean;
  section?: string;
  source?: string;
  /** Path relative to the mirror root (`pool/main/…/x.deb`). */
  filename: string;
  size: number;
  sha256: string;
  installedSizeKiB?: number;
  /** Where it came from, e.g. the suite name (`trixie-security`). */
  origin: string;
  /** The index paragraph (restricted to PACKAGE_FIELDS when parsed that way). */
  fields: Paragraph;
}

/**
 * Turns an index paragraph into a PackageInfo. Returns undefined for a
 * paragraph without Package/Version/Architecture.
 *
 * @example
 * toPackage({ Package: 'hello', Version: '2.10-3', Architecture: 'amd64', Filename: 'pool/…', Size: '53000', SHA256: '…' }, 'trixie')
 */
export function toPackage(p: Paragraph, origin: string): PackageInfo | undefined {
  if (!p.Package || !p.Version || !p.Architecture) return undefined;
  const ma = p['Multi-Arch'];
  return {
    name: p.Package,
    version: p.Version,
    arch: p.Architecture,
    multiArch: ma === 'same' || ma === 'foreign' || ma === 'allowed' ? ma : 'no',
    priority: p.Priority ?? 'optional',
    essential: p.Essential === 'yes',
    section: p.Section,
    source: p.Source,
    filename: p.Filename ?? '',
    size: Number(p.Size ?? 0),
    sha256: p.SHA256 ?? '',
    installedSizeKiB: p['Installed-Size'] ? Number(p['Installed-Size']) : undefined,
    origin,
    fields: p,
  };
}

type RelField = 'Depends' | 'Pre-Depends' | 'Recommends' | 'Conflicts' | 'Breaks';
const relCache = new WeakMap<PackageInfo, Map<string, Alternatives[]>>();
const provCache = new WeakMap<PackageInfo, Provide[]>();

/**
 * A relationship field of a package, parsed once and cached.
 *
 * @example
 * relations(pkg, 'Pre-Depends') // [[{ name: 'libc6', op: '>=', version: '2.34' }]]
 */
export function relations(pkg: PackageInfo, field: RelField): Alternatives[] {
  let m = relCache.get(pkg);
  if (!m) relCache.set(pkg, (m = new Map()));
  let r = m.get(field);
  if (!r) m.set(field, (r = parseRelations(pkg.fields[field])));
  return r;
}

/** The parsed Provides of a package (cached). */
export function provides(pkg: PackageInfo): Provide[] {
  let r = provCache.get(pkg);
  if (!r) provCache.set(pkg, (r = parseProvides(pkg.fields.Provides)));
  return r;
}

/** A package that provides a virtual name, with the provided version if any. */
export interface Provider {
  pkg: PackageInfo;
  version?: string;
}

/**
 * Candidates by name and providers by virtual name, for one architecture.
 *
 * @example
 * const u = new Universe('amd64');
 * for await (const p of streamParagraphs(packagesText, { fields: PACKAGE_FIELDS })) u.add(p, 'trixie');
 * u.get('apt')?.version;                     // '3.0.3'
 * u.providers('awk').map((p) => p.pkg.name); // ['mawk', 'gawk', …]
 */
export class Universe {
  readonly arch: string;
  private readonly pkgs = new Map<string, PackageInfo>();
  private provIndex: Map<string, PackageInfo[]> | null = null;
  private readonly provCache = new Map<string, Provider[]>();

  constructor(arch: string) {
    this.arch = arch;
  }

  /** Adds one index paragraph; other architectures are ignored; the newest version wins. */
  add(p: Paragraph | PackageInfo, origin = ''): void {
    const pkg = 'fields' in p && typeof p.name === 'string' ? (p as PackageInfo) : toPackage(p as Paragraph, origin);
    if (!pkg || (pkg.arch !== this.arch && pkg.arch !== 'all')) return;
    const old = this.pkgs.get(pkg.name);
    if (old && compareVersions(old.version, pkg.version) >= 0) return;
    this.pkgs.set(pkg.name, pkg);
    this.provIndex = null;
  }

  /** The candidate of a real package. */
  get(name: string): PackageInfo | undefined {
    return this.pkgs.get(name);
  }

  /** Every candidate, in insertion order. */
  all(): IterableIterator<PackageInfo> {
    return this.pkgs.values();
  }

  get size(): number {
    return this.pkgs.size;
  }

  /** Packages whose Provides name `virtual`, sorted by package name. */
  providers(virtual: string): Provider[] {
    if (!this.provIndex) this.provIndex = this.buildProvIndex();
    const hit = this.provCache.get(virtual);
    if (hit) return hit;
    const pkgs = this.provIndex.get(virtual);
    let out: Provider[] = [];
    if (pkgs) {
      out = [...new Set(pkgs)]
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .flatMap((pkg) => provides(pkg).filter((pr) => pr.name === virtual).map((pr) => ({ pkg, version: pr.version })));
    }
    this.provCache.set(virtual, out);
    return out;
  }

  /**
   * virtual name → providing packages. Names only, scanned by hand: trixie
   * has ~70k Provides terms (Rust crates), most never asked for, so their
   * versions are parsed only for names the resolver looks up.
   */
  private buildProvIndex(): Map<string, PackageInfo[]> {
    this.provCache.clear();
    const idx = new Map<string, PackageInfo[]>();
    for (const pkg of this.pkgs.values()) {
      const field = pkg.fields.Provides;
      if (!field) continue;
      let start = 0;
      while (start < field.length) {
        let end = field.indexOf(',', start);
        if (end < 0) end = field.length;
        let i = start;
        while (i < end && (field.charCodeAt(i) === 32 || field.charCodeAt(i) === 10 || field.charCodeAt(i) === 9)) i++;
        let j = i;
        while (j < end) {
          const c = field.charCodeAt(j);
          if (c === 32 || c === 40 /* ( */ || c === 58 /* : */ || c === 10 || c === 9) break;
          j++;
        }
        if (j > i) {
          const name = field.slice(i, j);
          const l = idx.get(name);
          if (l) l.push(pkg);
          else idx.set(name, [pkg]);
        }
        start = end + 1;
      }
    }
    return idx;
  }
}
