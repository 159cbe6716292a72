/**
 * The table of contents of an uncompressed tar file, read by seeking from
 * header to header (no member is read): where each regular file's content
 * starts and how long it is. An OCI archive is read this way, its blobs
 * then streamed straight from their offsets instead of unpacking the
 * archive first. ustar names with their prefix, GNU long names (`L`) and
 * pax `path`/`size` records are understood.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { VerifyError } from '../../errors.js';

export interface TarMember {
  /** Content offset in the file. */
  offset: number;
  size: number;
  /** The typeflag character ('0' regular file, '5' directory, …). */
  type: string;
}

const BLOCK = 512;

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}

function octal(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i];
    return v;
  }
  const s = cstr(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function pax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString(), 10);
    if (!len) break;
    const rec = data.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out[rec.subarray(0, eq).toString()] = rec.subarray(eq + 1).toString();
    i += len;
  }
  return out;
}

/** Normalizes a member name: no leading `./` or `/`, no trailing `/`. */
export function memberName(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
}

/**
 * Lists the members of the tar file at `path` by normalized name.
 * Throws VerifyError when the file is not a tar or is cut short.
 *
 * @example
 * const toc = indexTar('/tmp/image.oci.tar');
 * toc.get('index.json') // { offset: 1536, size: 389, type: '0' }
 */
export function indexTar(path: string): Map<string, TarMember> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const out = new Map<string, TarMember>();
    const h = Buffer.alloc(BLOCK);
    let off = 0;
    let longName: string | undefined;
    let ext: Record<string, string> = {};
    const bad = (why: string) => new VerifyError(`cannot read \`${path}\` as a tar archive: ${why}`, { hint: 'the file is damaged or not a tar archive' });
    while (off + BLOCK <= size) {
      if (readSync(fd, h, 0, BLOCK, off) !== BLOCK) throw bad('short read');
      if (h.every((c) => c === 0)) return out;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
      if (sum !== octal(h, 148, 8)) throw bad(`bad header checksum at byte ${off}`);
      const type = String.fromCharCode(h[156] || 0x30);
      const len = octal(h, 124, 12);
      const data = off + BLOCK;
      const next = data + Math.ceil(len / BLOCK) * BLOCK;
      if (data + len > size) throw bad('unexpected end of archive');
      if (type === 'x' || type === 'L') {
        const buf = Buffer.alloc(len);
        readSync(fd, buf, 0, len, data);
        if (type === 'L') longName = cstr(buf, 0, len);
        else ext = pax(buf);
      } else if (type !== 'g') {
        const magic = h.subarray(257, 263).toString('latin1');
        const prefix = magic.startsWith('ustar') ? cstr(h, 345, 155) : '';
        const name = ext.path ?? longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
        const realSize = ext.size !== undefined ? Number(ext.size) : len;
        out.set(memberName(name), { offset: data, size: realSize, type });
        longName = undefined;
        ext = {};
        off = data + Math.ceil(realSize / BLOCK) * BLOCK;
        continue;
      }
      off = next;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
