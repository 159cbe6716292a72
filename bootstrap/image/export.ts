/**
 * tree → image: `nsbox export DIR OUT` and `nsbox bootstrap … --output OUT`.
 *
 * - tar (plain, gzip, xz, zstd): the tree as mmdebstrap has GNU tar pack
 *   it (bootstrap/archive/tar-pack.ts; byte for byte the same archive),
 *   then a compressor with fixed settings (bootstrap/compress.ts).
 * - squashfs: mksquashfs from squashfs-tools, as mmdebstrap runs its
 *   tar2sqfs: xz, 1 MiB blocks, NFS-exportable (mksquashfs's default),
 *   xattrs kept, not crossing into other file systems. mksquashfs has been
 *   reproducible by default since 4.4 and reads SOURCE_DATE_EPOCH itself
 *   (the file system's time, and file times clamped to it), so it gets the
 *   variable and nothing else is needed.
 * - OCI (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`): one layer (the same tar
 *   without device nodes, which the runtime provides, gzip-compressed by
 *   default), a config with the tree's platform and a default command, a
 *   manifest, and the tag in index.json.
 *
 * With SOURCE_DATE_EPOCH set, the same tree gives the same bytes each time
 * (tar, its compressed forms, the OCI layer, config, manifest, index and
 * the oci-archive around them). Output files appear only when complete:
 * they are written under a temporary name beside the target and renamed.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, openSync, realpathSync, renameSync, rmSync, statSync, createWriteStream } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, NsboxError, UsageError } from '../../errors.js';
import { packTree, type PackStats } from '../archive/tar-pack.js';
import { createCompressor, compressorBuffers } from '../compress.js';
import { sourceDateEpoch } from '../source-date.js';
import { MARKER } from '../tree-state.js';
import { imageConfig, treePlatform, type ConfigInput } from './oci-config.js';
import { HashTap, LayoutWriter, MEDIA, type Descriptor } from './oci-layout.js';
import { parseOutput, type OutputTarget } from './spec.js';

export interface ExportOptions extends ConfigInput {
  /** OCI layer compression (default gzip, what every registry and engine reads). */
  layerCompression?: 'gzip' | 'zstd' | 'none';
  /** Overrides the SOURCE_DATE_EPOCH of the environment. */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

export interface ExportResult {
  /** The output as given back to the user: a path, `oci:DIR:TAG` or `oci-archive:FILE:TAG`. */
  output: string;
  format: 'tar' | 'tar.gz' | 'tar.xz' | 'tar.zst' | 'squashfs' | 'oci' | 'oci-archive';
  /** Size of what was written (the file; for an OCI directory, the layer). */
  bytes: number;
  /** Members of the tree's tar (squashfs: undefined). */
  stats?: PackStats;
  /** OCI: the manifest's digest. */
  manifestDigest?: string;
}

const TAR_FORMAT = { none: 'tar', gzip: 'tar.gz', xz: 'tar.xz', zstd: 'tar.zst' } as const;

/**
 * Writes the tree at `dir` to `out` (a name, or a parsed OutputTarget).
 *
 * @example
 * await exportTree('/srv/bookworm', 'oci-archive:/tmp/bookworm.tar:12', { cmd: ['/bin/bash'] });
 */
export async function exportTree(dir: string, out: string | OutputTarget, opts: ExportOptions = {}): Promise<ExportResult> {
  const target = typeof out === 'string' ? parseOutput(out) : out;
  const root = checkTree(dir, target);
  const sde = opts.sourceDateEpoch ?? sourceDateEpoch();
  try {
    switch (target.kind) {
      case 'tar': return await exportTar(root, target, sde, opts.signal);
      case 'squashfs': return await exportSquashfs(root, target.path, sde, opts.signal);
      case 'oci': return await exportOci(root, target, sde, opts);
    }
  } catch (err) {
    if (opts.signal?.aborted) throw new AbortedError('interrupted: nothing was written', { cause: err });
    if (err instanceof NsboxError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') throw new NsboxError(`cannot write \`${target.path}\`: no space left on device`, { cause: err, hint: 'free some space or write elsewhere' });
    if (e.code === 'EACCES' || e.code === 'EROFS' || e.code === 'ENOENT') throw new NsboxError(`cannot write \`${target.path}\`: ${e.code}`, { cause: err });
    throw err;
  }
}

/** The tree's real path; refuses what cannot be exported (missing, the host's /, half-built, output inside it). */
export function checkTree(dir: string, target: OutputTarget): string {
  let root: string;
  try {
    root = realpathSync(dir);
    if (!statSync(root).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new UsageError(`cannot export \`${dir}\`: no such directory`, { hint: 'name a tree directory, or an image in /var/lib/machines' });
  }
  if (root === '/') throw new UsageError('cannot export the host\'s own root directory', { hint: 'name a tree directory' });
  if (existsSync(join(root, MARKER))) {
    throw new UsageError(`cannot export \`${dir}\`: its nsbox bootstrap is incomplete`, { hint: 'rerun the bootstrap to finish it first' });
  }
  if (target.path !== '-') {
    const parent = dirname(target.path);
    if (!existsSync(parent)) throw new UsageError(`cannot write \`${target.path}\`: directory \`${parent}\` does not exist`);
    const rel = relative(root, resolve(realpathSync(parent), basename(target.path)));
    if (!rel.startsWith('..') && !rel.startsWith('/')) throw new UsageError(`cannot write \`${target.path}\` inside the tree it exports`, { hint: 'write the output outside the tree' });
  }
  return root;
}

/** A temporary name beside `path`, hidden, that a rename turns into `path`. */
function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.nsbox-${process.pid}-${Math.random().toString(36).slice(2, 8)}.tmp`);
}

async function writeFileAtomic(path: string, source: AsyncIterable<Buffer> | Readable, compressor: Transform, signal?: AbortSignal): Promise<number> {
  const tmp = tempBeside(path);
  try {
    // opened now, not when the stream gets to it: a pipeline that fails first must not create the file after its removal
    const sink = createWriteStream('', { fd: openSync(tmp, 'wx', 0o644) });
    await pipeline(source, compressor, sink, { signal });
    renameSync(tmp, path);
    return sink.bytesWritten;
  } finally {
    rmSync(tmp, { force: true });
  }
}

async function exportTar(root: string, t: Extract<OutputTarget, { kind: 'tar' }>, sde: number | undefined, signal?: AbortSignal): Promise<ExportResult> {
  const compressor = await createCompressor(t.compression);
  const { stream, stats } = packTree(root, { clampMtime: sde, signal, buffers: compressorBuffers(compressor) });
  let bytes: number;
  if (t.path === '-') {
    const tap = new HashTap();
    await pipeline(stream, compressor, tap, process.stdout, { signal, end: false });
    bytes = tap.bytes;
  } else {
    bytes = await writeFileAtomic(t.path, stream, compressor, signal);
  }
  return { output: t.path, format: TAR_FORMAT[t.compression], bytes, stats };
}

async function exportSquashfs(root: string, path: string, sde: number | undefined, signal?: AbortSignal): Promise<ExportResult> {
  const tmp = tempBeside(path);
  const args = [root, tmp, '-noappend', '-no-progress', '-quiet', '-comp', 'xz', '-b', '1M', '-xattrs', '-one-file-system', '-exit-on-error'];
  const env = { ...process.env, ...(sde !== undefined ? { SOURCE_DATE_EPOCH: String(sde) } : {}) };
  try {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((res, rej) => {
      const child = spawn('mksquashfs', args, { stdio: ['ignore', 'ignore', 'pipe'], env, signal });
      let err = '';
      child.stderr!.on('data', (d) => { err += d; });
      child.on('error', rej);
      child.on('close', (c) => res({ code: c, stderr: err }));
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NsboxError('cannot write squashfs: mksquashfs is not installed', { hint: 'install squashfs-tools (apt-get install squashfs-tools)' });
      throw err;
    });
    if (code !== 0) {
      const line = stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0] ?? `exit status ${code}`;
      throw new NsboxError(`cannot write \`${path}\`: mksquashfs failed: ${line}`);
    }
    renameSync(tmp, path);
    return { output: path, format: 'squashfs', bytes: statSync(path).size };
  } finally {
    rmSync(tmp, { force: true });
  }
}

async function exportOci(root: string, t: Extract<OutputTarget, { kind: 'oci' }>, sde: number | undefined, opts: ExportOptions): Promise<ExportResult> {
  const platform = treePlatform(root, opts.arch); // an unknown architecture fails before anything is written
  // A new directory or an archive is built aside and renamed; an existing layout gets blobs, then its index.
  const fresh = t.archive || !existsSync(t.path);
  const layoutDir = fresh ? mkdtempSync(join(dirname(t.path), `.${basename(t.path)}.nsbox-`)) : t.path;
  try {
    if (fresh) chmodSync(layoutDir, 0o755);
    const writer = new LayoutWriter(layoutDir);
    writer.init();
    const compression = opts.layerCompression ?? 'gzip';
    const compressor = await createCompressor(compression);
    const { stream, stats } = packTree(root, { clampMtime: sde, devices: false, refuseWhiteoutNames: true, signal: opts.signal, buffers: compressorBuffers(compressor) });
    const diff = new HashTap();
    const mediaType = compression === 'gzip' ? MEDIA.layerGzip : compression === 'zstd' ? MEDIA.layerZstd : MEDIA.layer;
    const layerDesc = await writer.blobFromStream([stream, diff, compressor], mediaType, opts.signal);
    const created = new Date((sde ?? Date.now() / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const config = writer.blobFromJson(imageConfig(root, opts, [diff.digest()], created), MEDIA.config);
    const manifest = writer.blobFromJson({ schemaVersion: 2, mediaType: MEDIA.manifest, config, layers: [layerDesc] }, MEDIA.manifest);
    const entry: Descriptor = { ...manifest, platform: { architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}) } };
    writer.tag(entry, t.tag);
    let bytes = layerDesc.size;
    if (t.archive) {
      const packed = packTree(layoutDir, { clampMtime: sde, owner: { uid: 0, gid: 0 }, signal: opts.signal });
      bytes = await writeFileAtomic(t.path, packed.stream, await createCompressor('none'), opts.signal);
    } else if (fresh) {
      renameSync(layoutDir, t.path);
    }
    return { output: `${t.archive ? 'oci-archive' : 'oci'}:${t.path}:${t.tag}`, format: t.archive ? 'oci-archive' : 'oci', bytes, stats, manifestDigest: manifest.digest };
  } finally {
    if (fresh) rmSync(layoutDir, { recursive: true, force: true });
  }
}
