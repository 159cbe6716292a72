/**
 * Reading a Packages index into a Universe: one pass that hashes the bytes
 * as fetched, decompresses and parses them. The universe is only committed
 * when the digest matched, so a tampered index adds nothing.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { VerifyError } from '../../errors.js';
import { decompressStream } from '../decompress.js';
import { writeAll } from '../write-all.js';
import { streamParagraphs } from './deb822.js';
import type { IndexChoice } from './release.js';
import { PACKAGE_FIELDS, toPackage, type PackageInfo, type Universe } from './universe.js';

/**
 * Streams a (compressed) Packages index, checks it against its Release
 * entry and adds its packages to `universe`. Returns how many it read.
 *
 * @example
 * const choice = chooseIndex(release, 'main', 'amd64')!;
 * await readPackagesIndex(createReadStream(cachedPath), choice, universe, 'trixie', url);
 */
export async function readPackagesIndex(
  input: Readable | Uint8Array,
  choice: IndexChoice,
  universe: Universe,
  origin: string,
  what = choice.path,
  opts: ReadIndexOptions = {},
): Promise<number> {
  const hash = createHash('sha256');
  let size = 0;
  const source = input instanceof Uint8Array ? Readable.from([Buffer.from(input.buffer, input.byteOffset, input.byteLength)]) : input;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  source.on('error', (e) => hasher.destroy(e));
  const plain = await decompressStream(source.pipe(hasher), choice.compression);
  const pkgs: PackageInfo[] = [];
  let plainSize = 0;
  // written synchronously: an awaited write per chunk stalled the parser on a thread-pool round trip
  const save = opts.savePlainTo && choice.compression !== 'none' && choice.uncompressed ? openSync(opts.savePlainTo, 'w') : undefined;
  async function* teed() {
    for await (const chunk of plain as AsyncIterable<Buffer>) {
      if (save !== undefined) {
        plainSize += chunk.length;
        writeAll(save, chunk);
      }
      yield chunk;
    }
  }
  try {
    for await (const p of streamParagraphs(teed(), { fields: PACKAGE_FIELDS })) {
      const pkg = toPackage(p, origin);
      if (pkg) pkgs.push(pkg);
    }
  } catch (err) {
    if (err instanceof VerifyError) throw err;
    // A decompressor error on tampered data is reported as what it is.
    throw new VerifyError(`cannot read \`${what}\`: ${(err as Error).message}`, { cause: err, hint: 'the file is corrupt; retry, or use another --mirror' });
  } finally {
    if (save !== undefined) closeSync(save);
  }
  const got = hash.digest('hex');
  if (size !== choice.size || got !== choice.sha256) {
    throw new VerifyError(`cannot verify \`${what}\`: ${size !== choice.size ? `size ${size}, expected ${choice.size}` : `SHA256 ${got}, expected ${choice.sha256}`}`, {
      hint: 'the file was corrupted or tampered with; retry, or use another --mirror',
    });
  }
  for (const p of pkgs) universe.add(p);
  // Not hashed here (44 MB of SHA-256 for a full suite): the copy is the decompression of bytes just
  // verified, and whoever reads it checks it against Release's uncompressed entry then.
  if (save !== undefined) opts.onPlainSaved?.(plainSize === choice.uncompressed!.size);
  return pkgs.length;
}

/** Options of `readPackagesIndex`. */
export interface ReadIndexOptions {
  /**
   * Also write the decompressed index here (when Release lists the
   * uncompressed checksum), so the next run can skip decompression.
   */
  savePlainTo?: string;
  /** Called after a complete, verified read with whether the saved copy has the size of Release's uncompressed entry. */
  onPlainSaved?: (matches: boolean) => void;
}
