/**
 * image → /var/lib/machines/NAME: `nsbox import`, machinectl's import-tar
 * for tar files (any compression, or none) and skopeo's oci/oci-archive
 * transports for OCI images (the manifest of the tag, or of the host's
 * platform in a multi-platform index; layers applied in order with their
 * whiteouts, each blob checked against its digest and each layer against
 * the config's diff_id). An uncompressed tar holding an OCI layout is
 * imported as the OCI image it is.
 *
 * The image is built in a hidden directory beside its final place
 * (`.#NAME.XXXXXX`, as machinectl names its temporary trees) and renamed
 * into place when complete; a failure or an interruption removes it, so a
 * half-imported image never appears. See layers.ts for what is refused.
 */
import { createReadStream, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, chmodSync, chownSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { AbortedError, NsboxError, UsageError, VerifyError } from '../../errors.js';
import { IMPORT_DIR } from '../../runtime/images.js';
import { readTar } from '../archive/tar.js';
import { TreeWriter } from '../archive/writer.js';
import { setXattr } from '../archive/native.js';
import { decompressStream } from '../decompress.js';
import { applyArchive, type RootEntry } from './layers.js';
import { hostPlatform } from './oci-config.js';
import { HashTap, LayoutReader, MEDIA, REF_NAME, type Descriptor } from './oci-layout.js';
import { checkImageName, imageNameFrom, parseSource, type ImportSource } from './spec.js';

export interface ImportOptions {
  /** Replace an image of that name. */
  force?: boolean;
  /** Where images go (default /var/lib/machines). */
  imagesDir?: string;
  signal?: AbortSignal;
  /** Notices (a platform that is not the host's). */
  warn?: (message: string) => void;
}

export interface ImportResult {
  name: string;
  path: string;
  format: 'tar' | 'oci' | 'oci-archive';
  /** OCI: layers applied. */
  layers?: number;
  entries: number;
}

const HINT = 'the archive is damaged or not a tar archive';

/**
 * Imports `source` (a file, `-`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`)
 * as image `name` (default: derived from the file name).
 *
 * @example
 * await importImage('oci-archive:/tmp/bookworm.tar', 'bookworm');
 * // then: nsbox run -M bookworm -- cat /etc/os-release
 */
export async function importImage(source: string | ImportSource, name?: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const src = typeof source === 'string' ? parseSource(source) : source;
  const imageName = checkImageName(name ?? imageNameFrom(src) ?? missingName(src));
  const imagesDir = opts.imagesDir ?? IMPORT_DIR;
  const dest = join(imagesDir, imageName);
  if (existsSync(dest) && !opts.force) {
    throw new UsageError(`cannot import \`${imageName}\`: an image of that name exists in ${imagesDir}`, { hint: 'pass --force to replace it, or choose another NAME' });
  }
  if (src.path !== '-' && !existsSync(src.path)) throw new UsageError(`cannot import \`${src.path}\`: no such file or directory`);
  const oci = src.kind === 'oci' ? src : src.path !== '-' && statSync(src.path).isFile() && LayoutReader.isArchive(src.path) ? { kind: 'oci' as const, path: src.path, archive: true } : undefined;
  if (!oci && src.path !== '-' && statSync(src.path).isDirectory()) {
    throw new UsageError(`cannot import \`${src.path}\`: it is a directory`, { hint: 'an OCI layout directory is imported as oci:DIR' });
  }

  mkdirSync(imagesDir, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(imagesDir, `.#${imageName}.`));
  chmodSync(tmp, 0o755);
  try {
    const writer = new TreeWriter(tmp);
    let root: RootEntry | undefined;
    let entries = 0;
    let layers: number | undefined;
    if (oci) {
      const r = await applyOci(writer, oci, opts);
      root = r.root;
      entries = r.entries;
      layers = r.layers;
    } else {
      const input: Readable = src.path === '-' ? process.stdin : createReadStream(src.path, { highWaterMark: 1 << 20 });
      // an interruption must not wait for input that may never come (a pipe)
      opts.signal?.addEventListener('abort', () => input.destroy(new AbortedError()), { once: true });
      const r = await applyArchive(writer, readTar(await decompressStream(input, 'auto'), { hint: HINT }), { whiteouts: false, signal: opts.signal });
      root = r.root;
      entries = r.entries;
    }
    await writer.finish();
    if (root) await applyRoot(tmp, root);
    place(tmp, dest, imagesDir, imageName);
    return { name: imageName, path: dest, format: oci ? (oci.archive ? 'oci-archive' : 'oci') : 'tar', layers, entries };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (opts.signal?.aborted) throw new AbortedError('interrupted: nothing was imported', { cause: err });
    if (err instanceof NsboxError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') throw new NsboxError(`cannot import \`${imageName}\`: no space left on device`, { cause: err, hint: `free some space in ${imagesDir}` });
    throw err;
  }
}

function missingName(src: ImportSource): never {
  throw new UsageError(`cannot derive an image name from \`${src.path}\``, { hint: 'pass NAME: nsbox import FILE NAME' });
}

/** Renames the finished tree into place; a replaced image goes only once the new one is there. */
function place(tmp: string, dest: string, imagesDir: string, name: string): void {
  if (!existsSync(dest)) {
    renameSync(tmp, dest);
    return;
  }
  const old = mkdtempSync(join(imagesDir, `.#${name}.old.`));
  renameSync(dest, join(old, 'tree'));
  renameSync(tmp, dest);
  rmSync(old, { recursive: true, force: true });
}

async function applyRoot(dir: string, r: RootEntry): Promise<void> {
  chownSync(dir, r.uid, r.gid);
  chmodSync(dir, r.mode & 0o7777);
  for (const [k, v] of Object.entries(r.xattrs ?? {})) await setXattr(dir, k, v);
  utimesSync(dir, r.mtime, r.mtime);
}

/** The image to import: the tag's manifest (or the only one), through nested indexes to the host's platform. */
function pickManifest(reader: LayoutReader, tag: string | undefined, where: string): Descriptor {
  const manifests = reader.index().manifests ?? [];
  const tags = manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => !!t);
  let pick: Descriptor | undefined;
  if (tag) {
    pick = manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    if (!pick) throw new UsageError(`cannot import \`${where}\`: no image tagged \`${tag}\` in it`, { hint: tags.length ? `its tags: ${tags.join(', ')}` : 'it has no tagged images' });
  } else if (manifests.length === 1) {
    pick = manifests[0];
  } else if (!manifests.length) {
    throw new VerifyError(`cannot import \`${where}\`: its index lists no image`);
  } else {
    throw new UsageError(`cannot import \`${where}\`: it holds ${manifests.length} images`, { hint: `name one as oci:PATH:TAG (tags: ${tags.join(', ') || 'none'})` });
  }
  const host = hostPlatform();
  for (let depth = 0; pick.mediaType === MEDIA.index || pick.mediaType === MEDIA.dockerList; depth++) {
    if (depth > 2) throw new VerifyError(`cannot import \`${where}\`: image indexes nested too deep`);
    const nested = (reader.json(pick).manifests ?? []) as Descriptor[];
    const match = nested.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === host.architecture && (!m.platform.variant || !host.variant || m.platform.variant === host.variant));
    if (!match) throw new UsageError(`cannot import \`${where}\`: it has no image for linux/${host.architecture}`, { hint: `its platforms: ${nested.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ')}` });
    pick = match;
  }
  if (pick.mediaType !== MEDIA.manifest && pick.mediaType !== MEDIA.dockerManifest) {
    throw new UsageError(`cannot import \`${where}\`: unsupported manifest type \`${pick.mediaType}\``);
  }
  return pick;
}

const LAYER_TYPES = new Set([
  MEDIA.layer, MEDIA.layerGzip, MEDIA.layerZstd,
  'application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

async function applyOci(writer: TreeWriter, src: { path: string; tag?: string; archive: boolean }, opts: ImportOptions): Promise<{ root?: RootEntry; entries: number; layers: number }> {
  const where = `${src.archive ? 'oci-archive' : 'oci'}:${src.path}${src.tag ? `:${src.tag}` : ''}`;
  const reader = new LayoutReader(src.path, src.archive);
  const manifest = reader.json(pickManifest(reader, src.tag, where));
  const configDesc = manifest.config as Descriptor | undefined;
  const layers = (manifest.layers ?? []) as Descriptor[];
  if (!configDesc || !Array.isArray(layers)) throw new VerifyError(`cannot import \`${where}\`: its manifest has no config or layers`);
  const config = reader.json(configDesc) as { architecture?: string; os?: string; rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) throw new VerifyError(`cannot import \`${where}\`: its config lists ${diffIds.length} layers, its manifest ${layers.length}`);
  const host = hostPlatform();
  if (config.architecture && config.architecture !== host.architecture) opts.warn?.(`the image is for ${config.os ?? 'linux'}/${config.architecture}, this host is ${host.os}/${host.architecture}: running it needs emulation`);
  let root: RootEntry | undefined;
  let entries = 0;
  for (const [i, layer] of layers.entries()) {
    if (!LAYER_TYPES.has(layer.mediaType as never)) throw new UsageError(`cannot import \`${where}\`: layer ${i + 1} has the unsupported type \`${layer.mediaType}\``);
    const diff = new HashTap();
    const blob = reader.blob(layer);
    const stop = () => blob.destroy(new AbortedError());
    opts.signal?.addEventListener('abort', stop, { once: true });
    const plain = await decompressStream(blob, 'auto');
    plain.on('error', (e) => diff.destroy(e));
    const r = await applyArchive(writer, readTar(plain.pipe(diff), { hint: 'the image is damaged' }), { whiteouts: true, signal: opts.signal });
    opts.signal?.removeEventListener('abort', stop);
    if (diff.digest() !== diffIds[i]) throw new VerifyError(`cannot import \`${where}\`: layer ${i + 1} does not match its diff_id`, { hint: 'the image is damaged or was tampered with' });
    root = r.root ?? root;
    entries += r.entries;
  }
  return { root, entries, layers: layers.length };
}
