/**
 * Checksums as repositories state them. Debian's Release files give SHA256
 * (and MD5Sum for old readers); RPM repomd.xml and primary.xml name the
 * algorithm per file and old repositories still say `sha` (SHA-1). All of them
 * go through this one shape so the cache and the fetcher never guess.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { UsageError } from '../errors.js';

/** Digest algorithms nsbox verifies. sha1/md5 exist only for old RPM repositories. */
export type DigestAlgo = 'sha256' | 'sha512' | 'sha1' | 'md5';

/** An expected digest: algorithm and lowercase hex. */
export interface Digest {
  algo: DigestAlgo;
  hex: string;
}

const HEX_LENGTH: Record<DigestAlgo, number> = { sha256: 64, sha512: 128, sha1: 40, md5: 32 };

/**
 * Normalizes a digest given as a bare SHA256 hex string or as `{ algo, hex }`.
 * RPM's names are accepted too (`sha` is SHA-1).
 *
 * @example
 * toDigest('9f86d0…')                   // { algo: 'sha256', hex: '9f86d0…' }
 * toDigest({ algo: 'sha', hex: 'a9…' }) // { algo: 'sha1', hex: 'a9…' }
 */
export function toDigest(d: string | { algo: string; hex: string }): Digest {
  const raw = typeof d === 'string' ? { algo: 'sha256', hex: d } : d;
  const algo = normalizeAlgo(raw.algo);
  const hex = raw.hex.trim().toLowerCase();
  if (hex.length !== HEX_LENGTH[algo] || !/^[0-9a-f]+$/.test(hex)) {
    throw new UsageError(`cannot use ${algo} digest \`${raw.hex}\`: expected ${HEX_LENGTH[algo]} hex digits`);
  }
  return { algo, hex };
}

/** Maps the names repositories use (`SHA256`, `sha`, `sha-512`) to a DigestAlgo. */
export function normalizeAlgo(name: string): DigestAlgo {
  const n = name.toLowerCase().replace(/[-_]/g, '');
  if (n === 'sha256') return 'sha256';
  if (n === 'sha512') return 'sha512';
  if (n === 'sha1' || n === 'sha') return 'sha1';
  if (n === 'md5' || n === 'md5sum') return 'md5';
  throw new UsageError(`cannot verify digest type \`${name}\``, { hint: 'supported: sha256, sha512, sha1, md5' });
}

/** A fresh hash object for the algorithm. */
export function newHash(algo: DigestAlgo): Hash {
  return createHash(algo);
}

/**
 * Hashes a file by streaming it.
 *
 * @example
 * const hex = await hashFile('/var/cache/nsbox/tmp/x', 'sha256');
 */
export async function hashFile(path: string, algo: DigestAlgo): Promise<string> {
  const h = createHash(algo);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Renders a digest for messages, e.g. `sha256:9f86d0…`. */
export function formatDigest(d: Digest): string {
  return `${d.algo}:${d.hex}`;
}
