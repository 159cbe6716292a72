/**
 * OCI image layouts (image-spec image-layout.md): `oci-layout`,
 * `index.json` and content-addressed `blobs/<alg>/<hex>`, in a directory
 * or in a tar file (what skopeo and podman call oci and oci-archive).
 *
 * Writing: blobs land under a temporary name and are renamed to their
 * digest; the index names each image by its tag
 * (`org.opencontainers.image.ref.name`), replacing an image of the same
 * tag. Reading: every blob is checked against its descriptor's digest and
 * size while it streams; a digest that is not `sha256:`/`sha512:` hex is
 * refused before it becomes a path.
 */
import { createHash } from 'node:crypto';
import {
  closeSync, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UsageError, VerifyError } from '../../errors.js';
import { indexTar, type TarMember } from '../archive/tar-index.js';
import type { Platform } from './oci-config.js';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Partial<Platform> & { architecture?: string; os?: string };
}

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_JSON = 4 << 20;

/** Checks a digest's form; returns its blob path parts. */
export function digestPath(digest: string): [string, string] {
  if (typeof digest !== 'string' || !DIGEST.test(digest)) throw new VerifyError(`cannot read OCI image: invalid digest \`${String(digest).slice(0, 80)}\``, { hint: 'the image is damaged or not an OCI image' });
  const [alg, hex] = digest.split(':');
  return [alg, hex];
}

/** A pass-through that hashes what goes by (sha256), counting bytes. */
export class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** A pass-through that fails at the end unless the bytes match the descriptor. */
class VerifyTap extends Transform {
  readonly #hash: ReturnType<typeof createHash>;
  #bytes = 0;
  constructor(readonly desc: Descriptor) {
    super();
    this.#hash = createHash(digestPath(desc.digest)[0]);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.desc.size) return cb(new VerifyError(`cannot read OCI blob ${this.desc.digest.slice(0, 19)}: larger than its descriptor says (${this.desc.size} bytes)`, { hint: 'the image is damaged or was tampered with' }));
    this.#hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = `${digestPath(this.desc.digest)[0]}:${this.#hash.digest('hex')}`;
    if (this.#bytes !== this.desc.size || got !== this.desc.digest) {
      return cb(new VerifyError(`cannot read OCI blob ${this.desc.digest.slice(0, 19)}: its content does not match its digest`, { hint: 'the image is damaged or was tampered with' }));
    }
    cb();
  }
}

/** Writes blobs and the index of a layout directory (created when missing). */
export class LayoutWriter {
  constructor(readonly dir: string) {}

  /** Refuses a directory that holds something other than an OCI layout; creates the skeleton. */
  init(): void {
    if (existsSync(this.dir)) {
      if (!statSync(this.dir).isDirectory()) throw new UsageError(`cannot write the OCI layout \`${this.dir}\`: it exists and is not a directory`);
      const layout = join(this.dir, 'oci-layout');
      if (!existsSync(layout) && readdirNonEmpty(this.dir)) {
        throw new UsageError(`cannot write the OCI layout \`${this.dir}\`: it exists and is not an OCI image layout`, { hint: 'name a new or empty directory' });
      }
    }
    mkdirSync(join(this.dir, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
    writeFileSync(join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}', { mode: 0o644 });
  }

  /** Streams a blob in through `stages` (a source, then transforms), hashing it, then renames it to its digest. */
  async blobFromStream(stages: [AsyncIterable<Buffer> | Readable, ...Transform[]], mediaType: string, signal?: AbortSignal): Promise<Descriptor> {
    const tmp = join(this.dir, 'blobs', 'sha256', `.nsbox-${process.pid}-${Math.random().toString(36).slice(2, 8)}.tmp`);
    const tap = new HashTap();
    try {
      const streams = [...stages, tap, createWriteStream('', { fd: openSync(tmp, 'wx', 0o644) })] as unknown as ReadonlyArray<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream>;
      await pipeline(streams, { signal });
      const digest = tap.digest();
      renameSync(tmp, join(this.dir, 'blobs', 'sha256', digest.slice(7)));
      return { mediaType, digest, size: tap.bytes };
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Writes a JSON blob (compact, keys in the order given). */
  blobFromJson(value: unknown, mediaType: string): Descriptor {
    const data = Buffer.from(JSON.stringify(value));
    const hex = createHash('sha256').update(data).digest('hex');
    const path = join(this.dir, 'blobs', 'sha256', hex);
    const tmp = `${path}.nsbox-${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o644 });
    renameSync(tmp, path);
    return { mediaType, digest: `sha256:${hex}`, size: data.length };
  }

  /** Points `tag` at `manifest` in index.json (an image of that tag before is dropped from the index). */
  tag(manifest: Descriptor, tag: string): void {
    const path = join(this.dir, 'index.json');
    let manifests: Descriptor[] = [];
    if (existsSync(path)) {
      try {
        manifests = (JSON.parse(readFileSync(path, 'utf8')) as { manifests?: Descriptor[] }).manifests ?? [];
      } catch {
        throw new UsageError(`cannot update \`${path}\`: it is not valid JSON`, { hint: 'repair or remove the layout' });
      }
    }
    manifests = manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
    manifests.push({ ...manifest, annotations: { ...manifest.annotations, [REF_NAME]: tag } });
    const tmp = `${path}.nsbox-${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests }), { mode: 0o644 });
    renameSync(tmp, path);
  }
}

function readdirNonEmpty(dir: string): boolean {
  try { return readdirSync(dir).length > 0; } catch { return false; }
}

/** A layout to read: a directory, or a tar file indexed once. */
export class LayoutReader {
  readonly #toc?: Map<string, TarMember>;

  constructor(readonly path: string, readonly archive: boolean) {
    if (!existsSync(path)) throw new UsageError(`cannot read \`${path}\`: no such ${archive ? 'file' : 'directory'}`);
    if (archive) this.#toc = indexTar(path);
    const layout = this.#readSmall('oci-layout');
    if (layout === undefined) throw new UsageError(`cannot read \`${path}\`: it is not an OCI image layout (no oci-layout file)`, { hint: archive ? 'import a plain tar without the oci-archive: prefix' : 'name an OCI layout directory' });
  }

  /** Whether the tar file at `path` holds an OCI layout (an oci-archive under a plain name). */
  static isArchive(path: string): boolean {
    try {
      const toc = indexTar(path);
      return toc.has('oci-layout') && toc.has('index.json');
    } catch {
      return false;
    }
  }

  #readSmall(name: string, limit = MAX_JSON): Buffer | undefined {
    if (this.#toc) {
      const m = this.#toc.get(name);
      if (!m || m.type !== '0') return undefined;
      if (m.size > limit) throw new VerifyError(`cannot read \`${name}\` in \`${this.path}\`: too large (${m.size} bytes)`);
      const buf = Buffer.alloc(m.size);
      const fd = openSync(this.path, 'r');
      try { readSync(fd, buf, 0, m.size, m.offset); } finally { closeSync(fd); }
      return buf;
    }
    try {
      const st = statSync(join(this.path, name));
      if (!st.isFile()) return undefined;
      if (st.size > limit) throw new VerifyError(`cannot read \`${name}\` in \`${this.path}\`: too large (${st.size} bytes)`);
      return readFileSync(join(this.path, name));
    } catch (err) {
      if (err instanceof VerifyError) throw err;
      return undefined;
    }
  }

  /** The layout's index.json. */
  index(): { manifests: Descriptor[] } {
    const raw = this.#readSmall('index.json');
    if (!raw) throw new VerifyError(`cannot read \`${this.path}\`: the OCI layout has no index.json`);
    return parseJson(raw, 'index.json') as { manifests: Descriptor[] };
  }

  /** A JSON blob (manifest, config), checked against its descriptor. */
  json(desc: Descriptor): Record<string, unknown> {
    const [alg, hex] = digestPath(desc.digest);
    const raw = this.#readSmall(`blobs/${alg}/${hex}`);
    if (!raw) throw new VerifyError(`cannot read OCI image \`${this.path}\`: blob ${desc.digest.slice(0, 19)} is missing`);
    const got = `${alg}:${createHash(alg).update(raw).digest('hex')}`;
    if (got !== desc.digest || (desc.size !== undefined && raw.length !== desc.size)) {
      throw new VerifyError(`cannot read OCI blob ${desc.digest.slice(0, 19)}: its content does not match its digest`, { hint: 'the image is damaged or was tampered with' });
    }
    return parseJson(raw, desc.digest.slice(0, 19)) as Record<string, unknown>;
  }

  /** A blob's bytes as a stream that fails at the end unless they match the descriptor. */
  blob(desc: Descriptor): Readable {
    const [alg, hex] = digestPath(desc.digest);
    let source: Readable;
    if (this.#toc) {
      const m = this.#toc.get(`blobs/${alg}/${hex}`);
      if (!m) throw new VerifyError(`cannot read OCI image \`${this.path}\`: blob ${desc.digest.slice(0, 19)} is missing`);
      // an empty blob is an empty range (end is inclusive)
      source = m.size ? createReadStream(this.path, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 }) : Readable.from([]);
    } else {
      const file = join(this.path, 'blobs', alg, hex);
      if (!existsSync(file)) throw new VerifyError(`cannot read OCI image \`${this.path}\`: blob ${desc.digest.slice(0, 19)} is missing`);
      source = createReadStream(file, { highWaterMark: 1 << 20 });
    }
    const tap = new VerifyTap(desc);
    source.on('error', (e) => tap.destroy(e));
    return source.pipe(tap);
  }
}

function parseJson(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new VerifyError(`cannot read OCI image: \`${what}\` is not valid JSON`, { hint: 'the image is damaged or not an OCI image' });
  }
}
