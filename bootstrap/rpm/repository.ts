/**
 * Loading one RPM repository the way librepo does: repodata/repomd.xml
 * (from a base URL, or from the first mirror of a metalink whose copy
 * matches the metalink's hash), then the metadata files it lists, each
 * fetched into the content-addressed cache and checked against the
 * checksum and size in repomd.xml, decompressed as its name says, and
 * checked again against its open-checksum. primary is read always;
 * filelists only when the caller asks (a file dependency outside the paths
 * primary carries).
 */
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { NetworkError, NsboxError, VerifyError } from '../../errors.js';
import type { EngineContext } from '../engine.js';
import { fetchAll } from '../fetch.js';
import { compressionFromName, createDecompressor } from '../decompress.js';
import { newHash } from '../digest.js';
import type { FedoraRepo } from '../../recipes/fedora.js';
import { metalinkAccepts, parseMetalink } from './metalink.js';
import { parseFilelists, parsePrimary, type RpmPackage } from './primary.js';
import { parseRepomd, repomdRecord, type Repomd, type RepomdRecord } from './repomd.js';

/** A repository whose primary metadata is loaded. */
export interface LoadedRepo {
  id: string;
  /** Base URL the packages are fetched from (ends in `/`). */
  base: string;
  repomd: Repomd;
  packages: RpmPackage[];
}

/**
 * Loads repomd.xml and primary of one repository.
 *
 * @example
 * const repo = await loadRepo(ctx, { id: 'fedora', baseUrl: 'http://127.0.0.1:8080/releases/40/Everything/x86_64/os/' });
 * repo.packages.length; // 47
 */
export async function loadRepo(ctx: EngineContext, repo: FedoraRepo): Promise<LoadedRepo> {
  const { base, data } = repo.metalink ? await repomdFromMetalink(ctx, repo.id, repo.metalink) : await repomdFrom(ctx, repo.baseUrl!);
  let repomd: Repomd;
  try {
    repomd = parseRepomd(data.toString('utf8'));
  } catch (e) {
    throw new VerifyError(`cannot read the ${repo.id} repository's repomd.xml at \`${base}\`: ${(e as Error).message.replace(/^cannot read repomd\.xml: /, '')}`, { cause: e });
  }
  const primary = repomdRecord(repomd, 'primary');
  if (!primary) throw new VerifyError(`cannot use the ${repo.id} repository at \`${base}\`: its repomd.xml lists no primary metadata`);
  const packages = await parsePrimary(await metadataStream(ctx, repo.id, base, primary), { repo: repo.id });
  return { id: repo.id, base, repomd, packages };
}

/**
 * Reads the repository's filelists and gives every package in `pool` that
 * came from it its full file list (dnf 4 always does this; dnf 5 and nsbox
 * only when a file dependency needs it).
 */
export async function mergeFilelists(ctx: EngineContext, repo: LoadedRepo, pool: RpmPackage[]): Promise<void> {
  const rec = repomdRecord(repo.repomd, 'filelists');
  if (!rec) throw new VerifyError(`cannot read file lists of the ${repo.id} repository: its repomd.xml lists none`);
  const mine = new Map(pool.filter((p) => p.repo === repo.id).map((p) => [p.checksum.hex, p]));
  const files = await parseFilelists(await metadataStream(ctx, repo.id, repo.base, rec), (id) => mine.has(id));
  for (const [id, list] of files) {
    const p = mine.get(id);
    if (p) p.files = list;
  }
}

async function repomdFrom(ctx: EngineContext, base: string): Promise<{ base: string; data: Buffer }> {
  const url = `${base.replace(/\/*$/, '/')}repodata/repomd.xml`;
  const { data } = await ctx.cache.fetchIndex(ctx.http, url, { signal: ctx.signal });
  return { base: base.replace(/\/*$/, '/'), data };
}

async function repomdFromMetalink(ctx: EngineContext, id: string, metalink: string): Promise<{ base: string; data: Buffer }> {
  const ml = parseMetalink(await ctx.http.getText(metalink, { signal: ctx.signal }));
  if (!ml.urls.length) throw new NetworkError(`cannot use metalink \`${metalink}\`: it lists no mirror for the ${id} repository`, { hint: 'check --release and --arch, or pass --mirror URL' });
  if (!ml.hashes.length) throw new VerifyError(`cannot use metalink \`${metalink}\`: it gives no checksum for repomd.xml`);
  const problems: string[] = [];
  for (const url of ml.urls.slice(0, 8)) {
    try {
      const data = await ctx.http.getBuffer(url, { signal: ctx.signal, maxBytes: 16 << 20 });
      if (metalinkAccepts(ml, data)) return { base: url.replace(/repodata\/repomd\.xml$/, ''), data };
      problems.push(`${new URL(url).host}: repomd.xml does not match the metalink`);
      ctx.log('debug', `${url}: repomd.xml does not match the metalink (mirror out of date?)`);
    } catch (e) {
      if (ctx.signal?.aborted) throw e;
      problems.push(e instanceof NsboxError ? e.message : String(e));
      ctx.log('debug', `${url}: ${(e as Error).message}`);
    }
  }
  throw new NetworkError(`cannot find a mirror of the ${id} repository that serves the repomd.xml the metalink names`, { hint: problems.slice(0, 3).join('; ') });
}

/** A metadata file fetched into the cache (verified), decompressed, its content digest checked at the end. */
async function metadataStream(ctx: EngineContext, id: string, base: string, rec: RepomdRecord): Promise<Readable> {
  const name = rec.location.slice(rec.location.lastIndexOf('/') + 1);
  const [got] = await fetchAll([{ url: base + rec.location, digest: rec.checksum, size: rec.size, name: `${id}/${name}` }], { http: ctx.http, cache: ctx.cache, signal: ctx.signal });
  const dec = await createDecompressor(compressionFromName(rec.location));
  const input = createReadStream(got!.path, { highWaterMark: 1 << 20 });
  input.on('error', (e) => dec.destroy(e));
  const out = input.pipe(dec);
  if (!rec.openChecksum) return out;
  const open = rec.openChecksum;
  const hash = newHash(open.algo);
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); },
    flush(cb) {
      const hex = hash.digest('hex');
      cb(hex === open.hex ? null : new VerifyError(`cannot verify \`${name}\` of the ${id} repository: its content does not match the open-checksum in repomd.xml`));
    },
  });
  out.on('error', (e) => check.destroy(e));
  return out.pipe(check);
}
