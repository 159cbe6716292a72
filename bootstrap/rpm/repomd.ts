/**
 * repodata/repomd.xml: the index of a repository's metadata files. Each
 * `<data type="primary">` names its location, the checksum and size of the
 * file as stored (compressed) and of its content (open-checksum, open-size).
 * The fetcher checks the stored checksum and size; the decompressor is
 * chosen from the location's extension by the shared decompress module.
 */
import { SaxesParser } from 'saxes';
import { VerifyError } from '../../errors.js';
import { toDigest, type Digest } from '../digest.js';

/** One metadata file listed in repomd.xml. */
export interface RepomdRecord {
  /** `primary`, `filelists`, `other`, `primary_db`, `modules`, `updateinfo`, ... */
  type: string;
  /** Path relative to the repository base, e.g. `repodata/<hash>-primary.xml.zst`. */
  location: string;
  checksum: Digest;
  openChecksum?: Digest;
  size?: number;
  openSize?: number;
  timestamp?: number;
}

/** A parsed repomd.xml. */
export interface Repomd {
  revision?: string;
  records: RepomdRecord[];
}

/**
 * Parses repomd.xml text.
 *
 * @example
 * const md = parseRepomd(await readFile('repodata/repomd.xml', 'utf8'));
 * const primary = repomdRecord(md, 'primary'); // { location: 'repodata/…-primary.xml.zst', checksum: { algo: 'sha256', … }, size: … }
 */
export function parseRepomd(xml: string): Repomd {
  const parser = new SaxesParser({ position: false });
  const out: Repomd = { records: [] };
  let cur: Partial<RepomdRecord> & { _algo?: string; _openAlgo?: string } | undefined;
  let text = '';
  parser.on('opentag', (t) => {
    text = '';
    const a = t.attributes as Record<string, string>;
    if (t.name === 'data') cur = { type: a.type };
    else if (cur && t.name === 'location') cur.location = a.href;
    else if (cur && t.name === 'checksum') cur._algo = a.type;
    else if (cur && t.name === 'open-checksum') cur._openAlgo = a.type;
  });
  parser.on('text', (s) => { text += s; });
  parser.on('closetag', (t) => {
    const v = text.trim();
    if (t.name === 'revision' && !cur) out.revision = v;
    else if (cur) {
      if (t.name === 'checksum') cur.checksum = toDigest({ algo: cur._algo ?? 'sha256', hex: v });
      else if (t.name === 'open-checksum') cur.openChecksum = toDigest({ algo: cur._openAlgo ?? 'sha256', hex: v });
      else if (t.name === 'size') cur.size = Number(v);
      else if (t.name === 'open-size') cur.openSize = Number(v);
      else if (t.name === 'timestamp') cur.timestamp = Number(v);
      else if (t.name === 'data') {
        if (!cur.type || !cur.location || !cur.checksum) throw new VerifyError(`cannot read repomd.xml: entry \`${cur.type ?? '?'}\` lacks a location or checksum`);
        const { _algo, _openAlgo, ...rec } = cur;
        out.records.push(rec as RepomdRecord);
        cur = undefined;
      }
    }
    text = '';
  });
  try {
    parser.write(xml).close();
  } catch (e) {
    if (e instanceof VerifyError) throw e;
    throw new VerifyError(`cannot read repomd.xml: ${(e as Error).message}`, { cause: e });
  }
  return out;
}

/**
 * The record of one type. Prefers the XML form (`primary`) over database
 * forms (`primary_db`), which nsbox does not read.
 */
export function repomdRecord(md: Repomd, type: string): RepomdRecord | undefined {
  return md.records.find((r) => r.type === type);
}
