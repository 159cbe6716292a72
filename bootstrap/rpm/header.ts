/**
 * Reading and verifying .rpm files (rpm's lib/package.c, lib/header.c):
 *
 *   lead (96 bytes) | signature header (padded to 8) | main header | payload
 *
 * A header is: magic 8e ad e8 01, 4 reserved bytes, index count, data size,
 * 16-byte index entries (tag, type, offset, count; big-endian), data store.
 * The signature header's RSAHEADER (268) / DSAHEADER (267) tag holds an
 * OpenPGP signature over the main header's bytes (magic to end) — RSA,
 * DSA or EdDSA alike; rpm 6's OPENPGP tag (278) holds several. The main
 * header's PAYLOADDIGEST (5092) covers the compressed payload; packages
 * older than rpm 4.14 have none and are covered by the legacy signature
 * over header+payload (PGP 1002 / GPG 1005) instead.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { openpgpKeys as readOpenpgpKeys } from '../pgp.js';
import { checkSignature, type TrustedKeys } from '../pgp-lite.js';
import { VerifyError } from '../../errors.js';
import { createDecompressor, decompressBuffer, type Compression } from '../decompress.js';
import { Scratch } from '../scratch.js';

/** Tags used here (rpmtag.h). */
export const TAG = {
  // signature header
  SIG_SIZE: 1000, SIG_MD5: 1004, SIG_LONGARCHIVESIZE: 271, SIG_PGP: 1002, SIG_GPG: 1005, SIG_PAYLOADSIZE: 1007,
  DSAHEADER: 267, RSAHEADER: 268, SHA1HEADER: 269, LONGSIGSIZE: 270, SHA256HEADER: 273, OPENPGP: 278,
  // main header
  NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, SUMMARY: 1004, ARCH: 1022,
  PREIN: 1023, POSTIN: 1024, PREUN: 1025, POSTUN: 1026, PREINPROG: 1085, POSTINPROG: 1086, PREUNPROG: 1087, POSTUNPROG: 1088,
  FILESIZES: 1028, FILEMODES: 1030, FILERDEVS: 1033, FILEMTIMES: 1034, FILEDIGESTS: 1035, FILELINKTOS: 1036, FILEFLAGS: 1037,
  FILEUSERNAME: 1039, FILEGROUPNAME: 1040, SOURCERPM: 1044, PROVIDENAME: 1047, REQUIREFLAGS: 1048, REQUIRENAME: 1049, REQUIREVERSION: 1050,
  FILEDEVICES: 1095, FILEINODES: 1096, FILELANGS: 1097, DIRINDEXES: 1116, BASENAMES: 1117, DIRNAMES: 1118,
  PAYLOADFORMAT: 1124, PAYLOADCOMPRESSOR: 1125, PAYLOADFLAGS: 1126, LONGFILESIZES: 5008, FILECAPS: 5010, FILEDIGESTALGO: 5011,
  PAYLOADDIGEST: 5092, PAYLOADDIGESTALGO: 5093,
} as const;

const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01]);
const LEAD_MAGIC = Buffer.from([0xed, 0xab, 0xee, 0xdb]);
/** PGPHASHALGO_* → node hash names. */
const HASH_ALGO: Record<number, string> = { 1: 'md5', 2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

type Value = string | string[] | number[] | bigint[] | Buffer;

/** A parsed header: its exact bytes (magic included) and a typed tag reader. */
export class RpmHeader {
  private readonly entries = new Map<number, { type: number; offset: number; count: number }>();
  private readonly store: Buffer;

  /** `bytes` runs from the header magic to the end of the data store. */
  constructor(readonly bytes: Buffer, what: string) {
    if (bytes.length < 16 || !bytes.subarray(0, 4).equals(HEADER_MAGIC)) throw new VerifyError(`cannot read ${what}: bad header magic`);
    const n = bytes.readUInt32BE(8);
    const dl = bytes.readUInt32BE(12);
    if (16 + n * 16 + dl !== bytes.length) throw new VerifyError(`cannot read ${what}: header size mismatch`);
    this.store = bytes.subarray(16 + n * 16);
    for (let i = 0; i < n; i++) {
      const o = 16 + i * 16;
      const tag = bytes.readUInt32BE(o);
      const type = bytes.readUInt32BE(o + 4);
      const offset = bytes.readInt32BE(o + 8);
      const count = bytes.readUInt32BE(o + 12);
      if (offset < 0 || offset > dl) throw new VerifyError(`cannot read ${what}: tag ${tag} points outside the header`);
      this.entries.set(tag, { type, offset, count });
    }
  }

  /** Whether the tag is present. */
  has(tag: number): boolean {
    return this.entries.has(tag);
  }

  /** A tag's value: strings for STRING, arrays for arrays and numbers, a Buffer for BIN. */
  get(tag: number): Value | undefined {
    const e = this.entries.get(tag);
    if (!e) return undefined;
    const s = this.store;
    switch (e.type) {
      case 1: case 2: return [...s.subarray(e.offset, e.offset + e.count)];
      case 3: return Array.from({ length: e.count }, (_, i) => s.readUInt16BE(e.offset + 2 * i));
      case 4: return Array.from({ length: e.count }, (_, i) => s.readUInt32BE(e.offset + 4 * i));
      case 5: return Array.from({ length: e.count }, (_, i) => s.readBigUInt64BE(e.offset + 8 * i));
      case 6: return cstrings(s, e.offset, 1)[0]!;
      case 7: return s.subarray(e.offset, e.offset + e.count);
      case 8: case 9: return cstrings(s, e.offset, e.count);
      default: return undefined;
    }
  }

  /** A string tag (first element of an array tag). */
  str(tag: number): string | undefined {
    const v = this.get(tag);
    return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
  }

  /** A string array tag ([] when absent). */
  strs(tag: number): string[] {
    const v = this.get(tag);
    return typeof v === 'string' ? [v] : Array.isArray(v) && (v.length === 0 || typeof v[0] === 'string') ? (v as string[]) : [];
  }

  /** A numeric array tag ([] when absent). */
  nums(tag: number): number[] {
    const v = this.get(tag);
    return Array.isArray(v) ? (v as (number | bigint | string)[]).map(Number) : [];
  }

  /** A BIN tag. */
  bin(tag: number): Buffer | undefined {
    const v = this.get(tag);
    return Buffer.isBuffer(v) ? v : undefined;
  }
}

function cstrings(s: Buffer, at: number, count: number): string[] {
  const out: string[] = [];
  let o = at;
  for (let i = 0; i < count; i++) {
    const end = s.indexOf(0, o);
    if (end < 0) throw new VerifyError('cannot read header: unterminated string');
    out.push(s.toString('utf8', o, end));
    o = end + 1;
  }
  return out;
}

/** One file as the main header describes it (owners by name, as rpm installs them). */
export interface RpmFileEntry {
  path: string;
  mode: number;
  size: number;
  user: string;
  group: string;
  mtime: number;
  rdev: number;
  linkTo: string;
  flags: number;
  /** Languages of a %lang file (`de`, `pt|pt_BR`), '' for any. */
  lang: string;
  digest: string;
  /** File capabilities in text form (`cap_net_raw=ep`), '' for none. */
  caps: string;
  inode: number;
}

/** An .rpm file's headers and where its payload starts. */
export interface RpmFile {
  path: string;
  signature: RpmHeader;
  header: RpmHeader;
  /** Byte offset of the main header and of the payload in the file. */
  headerStart: number;
  payloadStart: number;
  fileSize: number;
  /** name-[epoch:]version-release.arch */
  nevra: string;
}

// Packages are read with synchronous calls: a few small reads each, where a thread-pool round
// trip per read cost more than the reads (measured), while downloads of the rest go on.
function readExactly(fd: number, pos: number, len: number, what: string, scratch?: Scratch): Buffer {
  const buf = scratch ? scratch.get(len) : Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) throw new VerifyError(`cannot read ${what}: file is truncated`);
    got += n;
  }
  return buf;
}

function readHeaderAt(fd: number, pos: number, what: string): RpmHeader {
  const intro = readExactly(fd, pos, 16, what);
  if (!intro.subarray(0, 4).equals(HEADER_MAGIC)) throw new VerifyError(`cannot read ${what}: bad header magic`);
  const n = intro.readUInt32BE(8);
  const dl = intro.readUInt32BE(12);
  if (n > 0x10000 || dl > 256 << 20) throw new VerifyError(`cannot read ${what}: header too large`);
  return new RpmHeader(readExactly(fd, pos, 16 + n * 16 + dl, what), what);
}

/**
 * Reads the lead and both headers of an .rpm file (does not verify).
 *
 * @example
 * const rpm = await readRpm('bash-5.2.26-1.fc40.x86_64.rpm');
 * rpm.header.str(TAG.NAME); // 'bash'
 */
export async function readRpm(path: string): Promise<RpmFile> {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    const lead = readExactly(fd, 0, 96, base);
    if (!lead.subarray(0, 4).equals(LEAD_MAGIC)) throw new VerifyError(`cannot read ${base}: not an RPM package`);
    const signature = readHeaderAt(fd, 96, `${base} (signature header)`);
    const headerStart = 96 + ((signature.bytes.length + 7) & ~7);
    const header = readHeaderAt(fd, headerStart, `${base} (header)`);
    const payloadStart = headerStart + header.bytes.length;
    if (payloadStart > size) throw new VerifyError(`cannot read ${base}: file is truncated`);
    const h = header;
    const epoch = h.nums(TAG.EPOCH)[0];
    const nevra = `${h.str(TAG.NAME)}-${epoch ? `${epoch}:` : ''}${h.str(TAG.VERSION)}-${h.str(TAG.RELEASE)}.${h.has(TAG.SOURCERPM) ? h.str(TAG.ARCH) : 'src'}`;
    return { path, signature, header, headerStart, payloadStart, fileSize: size, nevra };
  } finally {
    closeSync(fd);
  }
}

/** The payload compressor the header names, as a decompress.ts kind. */
export function payloadCompression(rpm: RpmFile): Compression {
  const c = rpm.header.str(TAG.PAYLOADCOMPRESSOR) ?? 'gzip';
  switch (c) {
    case 'gzip': return 'gzip';
    case 'bzip2': return 'bzip2';
    case 'xz': case 'lzma': return 'xz';
    case 'zstd': return 'zstd';
    default: throw new VerifyError(`cannot unpack ${rpm.nevra}: unknown payload compressor \`${c}\``);
  }
}

/** The files of a package in header order (the order of the cpio archive is not guaranteed to match). */
export function fileEntries(h: RpmHeader): RpmFileEntry[] {
  const base = h.strs(TAG.BASENAMES);
  const dirs = h.strs(TAG.DIRNAMES);
  const di = h.nums(TAG.DIRINDEXES);
  const modes = h.nums(TAG.FILEMODES);
  const sizes = h.has(TAG.LONGFILESIZES) ? h.nums(TAG.LONGFILESIZES) : h.nums(TAG.FILESIZES);
  const users = h.strs(TAG.FILEUSERNAME);
  const groups = h.strs(TAG.FILEGROUPNAME);
  const mtimes = h.nums(TAG.FILEMTIMES);
  const rdevs = h.nums(TAG.FILERDEVS);
  const links = h.strs(TAG.FILELINKTOS);
  const flags = h.nums(TAG.FILEFLAGS);
  const digests = h.strs(TAG.FILEDIGESTS);
  const caps = h.strs(TAG.FILECAPS);
  const inodes = h.nums(TAG.FILEINODES);
  const langs = h.strs(TAG.FILELANGS);
  return base.map((b, i) => ({
    path: dirs[di[i]!]! + b,
    mode: modes[i] ?? 0, size: sizes[i] ?? 0, user: users[i] ?? 'root', group: groups[i] ?? 'root',
    mtime: mtimes[i] ?? 0, rdev: rdevs[i] ?? 0, linkTo: links[i] ?? '', flags: flags[i] ?? 0, lang: langs[i] ?? '',
    digest: digests[i] ?? '', caps: caps[i] ?? '', inode: inodes[i] ?? 0,
  }));
}

/** Scriptlets for information (the tree's own rpm runs them). */
export function scriptlets(h: RpmHeader): { pre?: string; post?: string; preun?: string; postun?: string } {
  const s = (body: number, prog: number) => {
    const b = h.str(body);
    return b === undefined ? undefined : `#!${h.strs(prog).join(' ') || '/bin/sh'}\n${b}`;
  };
  const out: { pre?: string; post?: string; preun?: string; postun?: string } = {};
  const pre = s(TAG.PREIN, TAG.PREINPROG); if (pre) out.pre = pre;
  const post = s(TAG.POSTIN, TAG.POSTINPROG); if (post) out.post = post;
  const preun = s(TAG.PREUN, TAG.PREUNPROG); if (preun) out.preun = preun;
  const postun = s(TAG.POSTUN, TAG.POSTUNPROG); if (postun) out.postun = postun;
  return out;
}

/** Options for verifyRpm. */
export interface VerifyOptions {
  /** The keys the release trusts (bootstrap/pgp-lite.ts readTrustedKeys). */
  keys: TrustedKeys;
  /** Skip the signature check (`--no-verify`); digests are still checked. */
  noSignature?: boolean;
}

/** Signatures in the signature header: rpm 6 OPENPGP, else RSAHEADER / DSAHEADER. */
function headerSignatures(sig: RpmHeader): Buffer[] {
  const multi = sig.strs(TAG.OPENPGP);
  if (multi.length) return multi.map((b) => Buffer.from(b, 'base64'));
  return [sig.bin(TAG.RSAHEADER), sig.bin(TAG.DSAHEADER)].filter((b): b is Buffer => !!b);
}

/** hashRange's read buffer, kept: a fresh 1 MiB per package costs page faults (bootstrap/scratch.ts). */
const hashBuffer = new Scratch();

async function hashRange(path: string, start: number, algo: string, end?: number): Promise<string> {
  const h = createHash(algo);
  const fd = openSync(path, 'r');
  try {
    const last = end ?? fstatSync(fd).size;
    const buf = hashBuffer.get(1 << 20); // used synchronously below: no other caller in between
    for (let pos = start; pos < last; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, last - pos), pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Reads and verifies an .rpm file: the OpenPGP header signature against
 * `keys`, the header's own SHA256/SHA1 digest, and the payload digest (or,
 * for packages from before rpm 4.14, the legacy header+payload signature).
 * Throws VerifyError naming the package and the key id.
 *
 * @example
 * const keys = readTrustedKeys([await readFile('RPM-GPG-KEY-fedora-40-primary')]);
 * const rpm = await verifyRpm('/var/cache/nsbox/…/bash-5.2.26-1.fc40.x86_64.rpm', { keys });
 */
export async function verifyRpm(path: string, opts: VerifyOptions): Promise<RpmFile> {
  const rpm = await readRpm(path);
  const { signature: sig, header } = rpm;
  const who = rpm.nevra;
  const fail = (why: string, hint?: string): never => { throw new VerifyError(`cannot verify ${who}: ${why}`, hint ? { hint } : {}); };

  const size = sig.nums(TAG.LONGSIGSIZE)[0] ?? sig.nums(TAG.SIG_SIZE)[0];
  if (size !== undefined && rpm.fileSize - rpm.headerStart !== size) fail(`size is ${rpm.fileSize - rpm.headerStart}, the signature header says ${size} (truncated or corrupt)`);

  const sha256 = sig.str(TAG.SHA256HEADER);
  if (sha256 && createHash('sha256').update(header.bytes).digest('hex') !== sha256) fail('header SHA256 digest mismatch (the header was modified)');
  const sha1 = sig.str(TAG.SHA1HEADER);
  if (!sha256 && sha1 && createHash('sha1').update(header.bytes).digest('hex') !== sha1) fail('header SHA1 digest mismatch (the header was modified)');

  if (!opts.noSignature) await checkSignatures(headerSignatures(sig), header.bytes, opts.keys, who, 'header');

  const pd = header.strs(TAG.PAYLOADDIGEST)[0];
  if (pd) {
    const algo = HASH_ALGO[header.nums(TAG.PAYLOADDIGESTALGO)[0] ?? 8];
    if (!algo) fail('unknown payload digest algorithm');
    if ((await hashRange(path, rpm.payloadStart, algo!)) !== pd) fail('payload digest mismatch (the payload was modified or truncated)');
  } else {
    // pre-4.14 packages: the v3 signature covers header + payload
    const legacy = [sig.bin(TAG.SIG_PGP), sig.bin(TAG.SIG_GPG)].filter((b): b is Buffer => !!b);
    const md5 = sig.bin(TAG.SIG_MD5);
    if (md5 && (await hashRange(path, rpm.headerStart, 'md5')) !== md5.toString('hex')) fail('MD5 digest mismatch (the package was modified)');
    if (!opts.noSignature) {
      const { readFile } = await import('node:fs/promises');
      const whole = (await readFile(path)).subarray(rpm.headerStart);
      await checkSignatures(legacy, whole, opts.keys, who, 'header and payload');
    } else if (!md5) fail('no payload digest');
  }
  return rpm;
}

/**
 * At least one of the package's signatures must verify with a trusted key.
 * Checked by pgp-lite (node:crypto); a signature it does not handle (a
 * subkey's, DSA, ECDSA, a newer packet version) goes to openpgp.js.
 */
async function checkSignatures(sigs: Buffer[], data: Buffer, keys: TrustedKeys, who: string, what: string): Promise<void> {
  if (!sigs.length) throw new VerifyError(`cannot verify ${who}: the package is not signed`, { hint: 'only signed packages are installed; --no-verify skips this check' });
  const seen: string[] = [];
  for (const raw of sigs) {
    const r = checkSignature(data, raw, keys.certificates);
    if (r.result === 'good') return;
    if (r.keyId) seen.push(r.keyId);
    if (r.result === 'unsupported') {
      if (await checkWithOpenpgp(raw, data, keys, who, what)) return;
      continue;
    }
    if (r.result === 'unknown-key') continue;
    if (r.result === 'unusable-key' || r.result === 'expired') throw new VerifyError(`cannot verify ${who}: ${r.why}`, { hint: 'check the system clock, or update the release key' });
    throw new VerifyError(`cannot verify ${who}: bad ${what} signature${r.keyId ? ` by key 0x${r.keyId}` : ''} (${r.why})`);
  }
  const trusted = keys.certificates.map((c) => c.keyId).filter(Boolean).join(', ') || 'none';
  throw new VerifyError(`cannot verify ${who}: signed by key ${seen.join(', ') || 'unknown'}, which is not the release's key (${trusted})`, {
    hint: 'the package does not come from this release, or the mirror serves other packages',
  });
}

type OpenpgpKeys = import('openpgp').PublicKey[];
const openpgpKeyCache = new WeakMap<TrustedKeys, Promise<OpenpgpKeys>>();

/** openpgp.js's verdict on one signature: true when good, false when made by a key it does not hold; throws when bad. */
async function checkWithOpenpgp(raw: Buffer, data: Buffer, keys: TrustedKeys, who: string, what: string): Promise<boolean> {
  const openpgp = await import('openpgp');
  let parsed = openpgpKeyCache.get(keys);
  if (!parsed) {
    parsed = (async () => {
      const out = (await readOpenpgpKeys(keys.raw)).map((k) => k.toPublic());
      // only the certificates the caller trusts (a pinned key's file may hold others)
      const pinned = new Set(keys.certificates.map((c) => c.fingerprint));
      return pinned.has('') ? out : out.filter((k) => pinned.has(k.getFingerprint().toUpperCase()));
    })();
    openpgpKeyCache.set(keys, parsed);
  }
  const pubs = await parsed;
  let signature;
  try {
    signature = await openpgp.readSignature({ binarySignature: raw });
  } catch (e) {
    throw new VerifyError(`cannot verify ${who}: unreadable ${what} signature (${(e as Error).message})`);
  }
  const ids = signature.getSigningKeyIDs().map((k) => k.toHex().toUpperCase());
  if (!pubs.some((k) => k.getKeys().some((sub) => ids.includes(sub.getKeyID().toHex().toUpperCase())))) return false;
  const message = await openpgp.createMessage({ binary: data });
  const { signatures } = await openpgp.verify({ message, signature, verificationKeys: pubs, format: 'binary' });
  try {
    await signatures[0]!.verified;
    return true;
  } catch (e) {
    throw new VerifyError(`cannot verify ${who}: bad ${what} signature by key ${ids.join(', ')} (${(e as Error).message})`);
  }
}

/**
 * The decompressed cpio payload, streamed from the file (feed it to the
 * shared cpio extractor; call verifyRpm first).
 *
 * @example
 * const cpio = await payloadStream(rpm);
 * await extractCpio(cpio, tree, { files: fileEntries(rpm.header) });
 */
export async function payloadStream(rpm: RpmFile): Promise<Readable> {
  const format = rpm.header.str(TAG.PAYLOADFORMAT) ?? 'cpio';
  if (format !== 'cpio') throw new VerifyError(`cannot unpack ${rpm.nevra}: payload format \`${format}\` is not supported`);
  const dec = await createDecompressor(payloadCompression(rpm));
  const input = createReadStream(rpm.path, { start: rpm.payloadStart, highWaterMark: 1 << 20 });
  input.on('error', (e) => dec.destroy(e));
  return input.pipe(dec);
}

/** Payloads whose cpio archive is at most this big are decompressed in one call (decompressBuffer) rather than streamed. */
const ONE_SHOT_LIMIT = 64 << 20;

/**
 * The decompressed cpio payload as one buffer when it is small enough to
 * hold (the signature header states its size), else as a stream. A damaged
 * payload is left to the stream to report.
 *
 * @example
 * await extractCpio(await payloadData(rpm), tree);
 */
export async function payloadData(rpm: RpmFile, scratch?: { input: Scratch; output: Scratch }): Promise<Readable | Buffer[]> {
  const size = rpm.signature.nums(TAG.SIG_LONGARCHIVESIZE)[0] ?? rpm.signature.nums(TAG.SIG_PAYLOADSIZE)[0];
  const format = rpm.header.str(TAG.PAYLOADFORMAT) ?? 'cpio';
  if (size !== undefined && size <= ONE_SHOT_LIMIT && format === 'cpio') {
    const fd = openSync(rpm.path, 'r');
    let raw: Buffer;
    try {
      raw = readExactly(fd, rpm.payloadStart, rpm.fileSize - rpm.payloadStart, rpm.nevra, scratch?.input);
    } finally {
      closeSync(fd);
    }
    try {
      const out = await decompressBuffer(raw, payloadCompression(rpm), scratch?.output.get(size));
      if (out.length === size) return [out];
    } catch {
      /* the stream below reports it */
    }
  }
  return payloadStream(rpm);
}
