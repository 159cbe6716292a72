/**
 * Streaming reader of primary.xml (and filelists.xml): one record per
 * `<package>`, with the dependency lists rpm stores and the file paths
 * primary carries (/etc/*, *bin/*, /usr/lib/sendmail; filelists has all).
 * Input is the decompressed byte stream; chunks are decoded with a
 * streaming UTF-8 decoder so multi-byte characters may straddle chunks.
 */
import { SaxesParser } from 'saxes';
import { VerifyError } from '../../errors.js';
import { toDigest, type Digest } from '../digest.js';
import type { Dep, DepOp } from './deps.js';
import type { Evr } from './vercmp.js';

/** A package as a repository describes it. */
export interface RpmPackage {
  name: string;
  arch: string;
  evr: Evr & { release: string };
  /** sha256 (usually) of the .rpm file; its hex is the package id. */
  checksum: Digest;
  /** Path relative to the repository base (or to `locationBase`). */
  location: string;
  locationBase?: string;
  /** Size of the .rpm file in bytes. */
  size: number;
  installedSize: number;
  sourcerpm?: string;
  /** Byte range of the main header in the file, as primary states it. */
  headerRange?: { start: number; end: number };
  provides: Dep[];
  requires: Dep[];
  conflicts: Dep[];
  obsoletes: Dep[];
  recommends: Dep[];
  suggests: Dep[];
  supplements: Dep[];
  enhances: Dep[];
  /** Files listed in primary (or all files once filelists were merged). */
  files: string[];
  /** Which repository the record came from (set by the caller). */
  repo?: string;
}

const DEP_LISTS = {
  'rpm:provides': 'provides', 'rpm:requires': 'requires', 'rpm:conflicts': 'conflicts', 'rpm:obsoletes': 'obsoletes',
  'rpm:recommends': 'recommends', 'rpm:suggests': 'suggests', 'rpm:supplements': 'supplements', 'rpm:enhances': 'enhances',
} as const;
type DepList = (typeof DEP_LISTS)[keyof typeof DEP_LISTS];

const OPS = new Set(['LT', 'LE', 'EQ', 'GE', 'GT']);

/** Builds a Dep from an `<rpm:entry>`'s attributes. */
function entryDep(a: Record<string, string>): Dep {
  const d: Dep = { name: a.name ?? '' };
  if (a.flags && OPS.has(a.flags)) {
    d.op = a.flags as DepOp;
    const evr: Evr = { epoch: a.epoch ? Number(a.epoch) : 0, version: a.ver ?? '' };
    if (a.rel !== undefined) evr.release = a.rel;
    d.evr = evr;
  }
  if (a.pre === '1' || a.pre === 'true') d.pre = true;
  return d;
}

/** Feeds a byte stream to a saxes parser through a streaming UTF-8 decoder. */
async function feed(source: AsyncIterable<Uint8Array | string>, parser: SaxesParser, what: string): Promise<void> {
  const dec = new TextDecoder('utf-8', { fatal: true });
  try {
    for await (const chunk of source) parser.write(typeof chunk === 'string' ? chunk : dec.decode(chunk, { stream: true }));
    parser.write(dec.decode()).close();
  } catch (e) {
    if (e instanceof VerifyError) throw e;
    throw new VerifyError(`cannot read ${what}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Stream-parses primary.xml into package records.
 *
 * @example
 * const pkgs = await parsePrimary(createReadStream('primary.xml').pipe(decompressor));
 * pkgs[0]; // { name: 'bash', arch: 'x86_64', evr: { epoch: 0, version: '5.2.26', release: '1.fc40' }, requires: [...], ... }
 */
export async function parsePrimary(
  source: AsyncIterable<Uint8Array | string>,
  opts: { repo?: string; onPackage?: (p: RpmPackage) => void } = {},
): Promise<RpmPackage[]> {
  const parser = new SaxesParser({ position: false });
  const out: RpmPackage[] = [];
  let p: RpmPackage | undefined;
  let list: DepList | undefined;
  let text = '';
  let collect = false;
  let algo = 'sha256';
  parser.on('opentag', (t) => {
    const a = t.attributes as Record<string, string>;
    switch (t.name) {
      case 'package':
        p = {
          name: '', arch: '', evr: { epoch: 0, version: '', release: '' }, checksum: { algo: 'sha256', hex: '' }, location: '',
          size: 0, installedSize: 0, provides: [], requires: [], conflicts: [], obsoletes: [], recommends: [], suggests: [],
          supplements: [], enhances: [], files: [],
        };
        if (opts.repo) p.repo = opts.repo;
        return;
      case 'rpm:entry':
        if (p && list) p[list].push(entryDep(a));
        return;
    }
    if (!p) return;
    if (t.name in DEP_LISTS) { list = DEP_LISTS[t.name as keyof typeof DEP_LISTS]; return; }
    switch (t.name) {
      case 'name': case 'arch': case 'rpm:sourcerpm': case 'file': collect = true; text = ''; break;
      case 'checksum': collect = true; text = ''; algo = a.type ?? 'sha256'; break;
      case 'version': p.evr = { epoch: Number(a.epoch ?? 0), version: a.ver ?? '', release: a.rel ?? '' }; break;
      case 'size': p.size = Number(a.package ?? 0); p.installedSize = Number(a.installed ?? 0); break;
      case 'location': p.location = a.href ?? ''; if (a['xml:base']) p.locationBase = a['xml:base']; break;
      case 'rpm:header-range': p.headerRange = { start: Number(a.start), end: Number(a.end) }; break;
    }
  });
  parser.on('text', (s) => { if (collect) text += s; });
  parser.on('closetag', (t) => {
    if (!p) return;
    if (collect) {
      collect = false;
      switch (t.name) {
        case 'name': p.name = text; break;
        case 'arch': p.arch = text; break;
        case 'rpm:sourcerpm': p.sourcerpm = text; break;
        case 'file': p.files.push(text); break;
        case 'checksum': p.checksum = toDigest({ algo, hex: text }); break;
      }
      return;
    }
    if (t.name in DEP_LISTS) list = undefined;
    else if (t.name === 'package') {
      if (!p.name || !p.location) throw new VerifyError('cannot read primary.xml: a package lacks a name or location');
      out.push(p);
      opts.onPackage?.(p);
      p = undefined;
    }
  });
  await feed(source, parser, 'primary.xml');
  return out;
}

/**
 * Stream-parses filelists.xml into package id (checksum hex) → all file paths.
 * `want` limits memory to the packages that matter.
 *
 * @example
 * const files = await parseFilelists(stream, (id) => chosen.has(id));
 */
export async function parseFilelists(
  source: AsyncIterable<Uint8Array | string>,
  want: (pkgid: string) => boolean = () => true,
): Promise<Map<string, string[]>> {
  const parser = new SaxesParser({ position: false });
  const out = new Map<string, string[]>();
  let files: string[] | undefined;
  let text = '';
  let inFile = false;
  parser.on('opentag', (t) => {
    const a = t.attributes as Record<string, string>;
    if (t.name === 'package') {
      const id = (a.pkgid ?? '').toLowerCase();
      files = want(id) ? [] : undefined;
      if (files) out.set(id, files);
    } else if (t.name === 'file' && files) { inFile = true; text = ''; }
  });
  parser.on('text', (s) => { if (inFile) text += s; });
  parser.on('closetag', (t) => {
    if (t.name === 'file' && inFile) { files!.push(text); inFile = false; }
    else if (t.name === 'package') files = undefined;
  });
  await feed(source, parser, 'filelists.xml');
  return out;
}

/** "name-[epoch:]version-release.arch", the way dnf prints a package. */
export function nevra(p: Pick<RpmPackage, 'name' | 'evr' | 'arch'>): string {
  return `${p.name}-${p.evr.epoch ? `${p.evr.epoch}:` : ''}${p.evr.version}-${p.evr.release}.${p.arch}`;
}
