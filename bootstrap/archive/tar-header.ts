/**
 * Encodes tar headers: POSIX ustar blocks, with a pax extended header in
 * front when a value does not fit (a path or link target over 100 bytes,
 * ids or sizes beyond the octal fields, a negative mtime) or cannot be said
 * in ustar at all (extended attributes, as `SCHILY.xattr.NAME` records
 * with the raw bytes as value: GNU tar's and libarchive's spelling). The
 * extended header is named the way GNU tar names it by default
 * (`%d/PaxHeaders/%f`). Owner names stay empty: archives are read by
 * number (`--numeric-owner`), as mmdebstrap writes them.
 *
 * Everything is a pure function of its input, so two archives of the same
 * entries are the same bytes.
 */

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

/** One member to encode. */
export interface TarHeader {
  /** Archive path, bytes or UTF-8 (`./usr/bin/ls`; a directory's ends with `/`). */
  path: Buffer | string;
  type: TarType;
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (whole; see mtimeNsec). */
  mtime: number;
  /** Nanoseconds past `mtime` (0-999999999): a fraction goes into a pax `mtime` record, as GNU tar writes it. */
  mtimeNsec?: number;
  /** Content size (files only). */
  size?: number;
  /** Symlink target, or the archive path a hard link refers to. */
  linkTarget?: Buffer | string;
  devMajor?: number;
  devMinor?: number;
  /** Extended attributes in the order to write them (the writer sorts them by name). */
  xattrs?: Array<[name: string, value: Buffer]>;
  /** The extended header's own time (GNU tar: its --mtime when given, else the member's; 0 before 1970). */
  extendedMtime?: number;
}

const BLOCK = 512;
/** GNU tar's default record: archives are padded to a multiple of 20 blocks. */
export const RECORD = 20 * BLOCK;

const TYPEFLAG: Record<TarType, number> = { file: 0x30, hardlink: 0x31, symlink: 0x32, char: 0x33, block: 0x34, directory: 0x35, fifo: 0x36 };

const ascii = (b: Buffer): boolean => b.every((c) => c < 0x80);
const bytes = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);

/** Whether `value` fits an octal field of `len` bytes (len-1 digits and a NUL). */
function fitsOctal(value: number, len: number): boolean {
  return Number.isInteger(value) && value >= 0 && value < 8 ** (len - 1);
}

/** Writes a numeric field: octal, or GNU's base-256 form when too big (readers that know pax use the pax record). */
function numeric(buf: Buffer, off: number, len: number, value: number): void {
  if (fitsOctal(value, len)) {
    buf.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'ascii');
    buf[off + len - 1] = 0;
    return;
  }
  let v = BigInt(Math.max(0, Math.trunc(value)));
  for (let i = off + len - 1; i > off; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] = 0x80;
}

/** One pax record: "LEN key=value\n", LEN counting the whole record. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'utf8'), value, Buffer.from('\n')]);
}

/** GNU tar's default extended header name, `%d/PaxHeaders/%f`, cut to the 100 bytes of a name field. */
function paxName(path: Buffer): Buffer {
  let p = path;
  while (p.length > 1 && p[p.length - 1] === 0x2f) p = p.subarray(0, -1);
  const slash = p.lastIndexOf(0x2f);
  const dir = slash < 0 ? Buffer.from('.') : slash === 0 ? Buffer.from('/') : p.subarray(0, slash);
  const base = slash < 0 ? p : p.subarray(slash + 1);
  return Buffer.concat([dir, Buffer.from('/PaxHeaders/'), base]).subarray(0, 100);
}

function ustar(name: Buffer, h: { mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: number; link?: Buffer; devMajor?: number; devMinor?: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  name.copy(b, 0, 0, Math.min(name.length, 100));
  numeric(b, 100, 8, h.mode & 0o7777);
  numeric(b, 108, 8, h.uid);
  numeric(b, 116, 8, h.gid);
  numeric(b, 124, 12, h.size);
  numeric(b, 136, 12, Math.max(0, h.mtime));
  b.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  b[156] = h.typeflag;
  if (h.link) h.link.copy(b, 157, 0, Math.min(h.link.length, 100));
  b.write('ustar\u000000', 257, 8, 'latin1');
  if (h.typeflag !== 0x78) {
    numeric(b, 329, 8, h.devMajor ?? 0); // GNU tar fills both for every member (not for its extended headers)
    numeric(b, 337, 8, h.devMinor ?? 0);
  }
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return b;
}

/** A time as pax writes it: `-315619199.5`, `1700000000.123456789`, fraction trimmed of zeros. */
function decimalTime(sec: number, nsec: number): string {
  let total = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
  const sign = total < 0n ? '-' : '';
  if (total < 0n) total = -total;
  const frac = (total % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${total / 1_000_000_000n}${frac ? `.${frac}` : ''}`;
}

/** Zero bytes that pad `n` bytes of content to a whole block. */
export function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/**
 * The header block(s) of one member: a pax extended header and its
 * records when needed, then the ustar header. Content (files) follows,
 * padded with `padding(size)` zero bytes.
 *
 * @example
 * encodeHeader({ path: './etc/hostname', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 5 })
 * // one 512-byte block
 */
export function encodeHeader(h: TarHeader): Buffer {
  const path = bytes(h.path);
  const link = h.linkTarget === undefined ? undefined : bytes(h.linkTarget);
  const size = h.type === 'file' ? (h.size ?? 0) : 0;
  const mtime = Math.floor(h.mtime);
  const nsec = h.mtimeNsec ?? 0;
  const records: Buffer[] = [];
  // GNU tar's rule in pax format: a name that is long or not plain ASCII goes into a record
  if (path.length > 100 || !ascii(path)) records.push(paxRecord('path', path));
  if (link && (link.length > 100 || !ascii(link))) records.push(paxRecord('linkpath', link));
  if (!fitsOctal(size, 12)) records.push(paxRecord('size', Buffer.from(String(size))));
  if (!fitsOctal(h.uid, 8)) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (!fitsOctal(h.gid, 8)) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (nsec || !fitsOctal(mtime, 12)) records.push(paxRecord('mtime', Buffer.from(decimalTime(mtime, nsec))));
  for (const [name, value] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${name}`, value));
  const main = ustar(path, {
    mode: h.mode, uid: h.uid, gid: h.gid, size, mtime, typeflag: TYPEFLAG[h.type], link,
    devMajor: h.type === 'char' || h.type === 'block' ? h.devMajor : undefined,
    devMinor: h.type === 'char' || h.type === 'block' ? h.devMinor : undefined,
  });
  if (!records.length) return main;
  const data = Buffer.concat(records);
  const ext = ustar(paxName(path), { mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: h.extendedMtime ?? Math.max(0, mtime), typeflag: 0x78 });
  return Buffer.concat([ext, data, Buffer.alloc(padding(data.length)), main]);
}

/**
 * The end of an archive written so far `written` bytes long: two zero
 * blocks, then zeros up to a whole record, as GNU tar ends its archives.
 */
export function trailer(written: number): Buffer {
  const end = written + 2 * BLOCK;
  return Buffer.alloc(2 * BLOCK + ((RECORD - (end % RECORD)) % RECORD));
}
