/**
 * Fedora's metalinks (MirrorManager, metalink 3.0): for one repository, the
 * expected size and hashes of repodata/repomd.xml (the current one and
 * recent alternates) and the mirrors that serve it, by preference. A
 * repomd.xml is accepted from a mirror only when one of those hashes
 * matches, the way librepo checks it: the metalink, fetched over HTTPS from
 * Fedora, is what ties an unsigned repomd.xml to Fedora.
 */
import { createHash } from 'node:crypto';
import { SaxesParser } from 'saxes';
import { VerifyError } from '../../errors.js';

/** One accepted version of repomd.xml. */
export interface MetalinkHash {
  algo: string;
  hex: string;
  size?: number;
}

/** A parsed metalink for repomd.xml. */
export interface Metalink {
  /** Hashes repomd.xml may have (current first, then alternates). */
  hashes: MetalinkHash[];
  /** Mirror URLs of repomd.xml, best first (http and https only). */
  urls: string[];
}

const ALGOS = new Set(['sha512', 'sha256', 'sha1', 'md5']);

/**
 * Parses a metalink document; only the `repomd.xml` file entry is read.
 *
 * @example
 * const ml = parseMetalink(await http.getText('https://mirrors.fedoraproject.org/metalink?repo=fedora-40&arch=x86_64'));
 * ml.urls[0]; // 'https://mirror.example/fedora/linux/releases/40/Everything/x86_64/os/repodata/repomd.xml'
 */
export function parseMetalink(xml: string): Metalink {
  const parser = new SaxesParser({ xmlns: false, position: false });
  const hashes: MetalinkHash[] = [];
  const urls: { url: string; pref: number; order: number }[] = [];
  let inFile = false;
  let text = '';
  let hashAlgo: string | undefined;
  let urlAttrs: Record<string, string> | undefined;
  let size: number | undefined;
  /** Hashes of the current block (main or one alternate), given the block's size at its end. */
  let block: MetalinkHash[] = [];
  const local = (n: string) => n.slice(n.indexOf(':') + 1);
  parser.on('opentag', (t) => {
    text = '';
    const a = t.attributes as Record<string, string>;
    const n = local(t.name);
    if (n === 'file') inFile = a.name === 'repomd.xml';
    if (!inFile) return;
    if (n === 'hash') hashAlgo = (a.type ?? '').toLowerCase();
    else if (n === 'url') urlAttrs = a;
    else if (n === 'alternate') { block = []; size = undefined; }
  });
  parser.on('text', (s) => { text += s; });
  parser.on('closetag', (t) => {
    const n = local(t.name);
    const v = text.trim();
    text = '';
    if (!inFile) return;
    if (n === 'file') { inFile = false; return; }
    if (n === 'size') size = Number(v);
    else if (n === 'hash' && hashAlgo && ALGOS.has(hashAlgo)) block.push({ algo: hashAlgo, hex: v.toLowerCase() });
    else if (n === 'verification' || n === 'alternate') {
      for (const h of block) hashes.push(size !== undefined ? { ...h, size } : h);
      block = [];
    } else if (n === 'url' && urlAttrs) {
      const proto = (urlAttrs.protocol ?? v.slice(0, v.indexOf(':'))).toLowerCase();
      if ((proto === 'http' || proto === 'https') && /^https?:\/\//.test(v)) urls.push({ url: v, pref: Number(urlAttrs.preference ?? 0), order: urls.length });
      urlAttrs = undefined;
    }
  });
  try {
    parser.write(xml).close();
  } catch (e) {
    throw new VerifyError(`cannot read metalink: ${(e as Error).message}`, { cause: e });
  }
  urls.sort((a, b) => b.pref - a.pref || a.order - b.order);
  return { hashes, urls: urls.map((u) => u.url) };
}

/**
 * Whether `data` is a repomd.xml the metalink accepts (any listed hash of
 * the strongest algorithm present must match, size too when given).
 */
export function metalinkAccepts(ml: Metalink, data: Buffer): boolean {
  const strongest = ['sha512', 'sha256', 'sha1', 'md5'].find((a) => ml.hashes.some((h) => h.algo === a));
  if (!strongest) return false;
  const hex = createHash(strongest).update(data).digest('hex');
  return ml.hashes.some((h) => h.algo === strongest && h.hex === hex && (h.size === undefined || h.size === data.length));
}
