/**
 * Archives and OCI layouts built by hand for import tests, hostile ones
 * included: tar members from a list (through the tar header encoder that
 * matches GNU tar byte for byte), and an OCI layout whose blobs, config,
 * manifest and index are written here, independently of nsbox's exporter.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeHeader, padding, trailer, type TarHeader } from '../../bootstrap/archive/tar-header.js';

export type Member = Omit<Partial<TarHeader>, 'path'> & { path: string | Buffer; body?: string | Buffer };

/** A tar of `members` (type file unless said; directories 0755, others 0644). */
export function tarOf(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (const m of members) {
    const body = m.body === undefined ? Buffer.alloc(0) : Buffer.from(m.body);
    const type = m.type ?? 'file';
    const h = encodeHeader({ mode: type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1700000000, ...m, type, size: body.length });
    parts.push(h, body, Buffer.alloc(padding(body.length)));
    size += h.length + body.length + padding(body.length);
  }
  parts.push(trailer(size));
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Writes an OCI layout at `dir` with one image of `layers` (tar bytes,
 * gzip-compressed into blobs) tagged `tag`. `corrupt` flips a byte of
 * layer N after its digest was taken.
 */
export function ociLayoutOf(dir: string, layers: Buffer[], opts: { tag?: string; corrupt?: number } = {}): void {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const blob = (data: Buffer) => {
    writeFileSync(join(dir, 'blobs/sha256', sha(data)), data);
    return { digest: `sha256:${sha(data)}`, size: data.length };
  };
  const descs = layers.map((tar, i) => {
    const gz = gzipSync(tar);
    const d = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(gz) };
    if (opts.corrupt === i) {
      gz[gz.length - 20] ^= 0xff;
      writeFileSync(join(dir, 'blobs/sha256', d.digest.slice(7)), gz);
    }
    return d;
  });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((t) => `sha256:${sha(t)}`) } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(config) }, layers: descs }));
  const m = blob(manifest);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' } }] }));
}
