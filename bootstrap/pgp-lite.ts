/**
 * OpenPGP version 4 certificates and signatures checked with node:crypto:
 * the part of OpenPGP an RPM bootstrap needs, without loading openpgp.js.
 *
 * Why: a Fedora bootstrap checks one signature packet per package against
 * one pinned key. Through openpgp.js that cost ~100 ms to load the library
 * and 3–10 ms per package (message and stream machinery around an RSA
 * check node does in microseconds) — a third of a whole bootstrap from a
 * loopback mirror, measured. Here the packets are parsed by hand (RFC 4880
 * §4–5, RFC 9580 for Ed25519) and the mathematics is node's: RSA
 * PKCS#1 v1.5 and Ed25519 (legacy EdDSA, algorithm 22, and algorithm 27).
 *
 * The same policy as openpgp.js with its defaults and as pgp.ts applies:
 * a certificate counts only with a valid self-certification by its primary
 * key; a valid self-revocation or an expiry before now disables it; key
 * flags without "sign data" refuse signing; RSA keys under 2047 bits, and
 * data signatures over MD5, RIPEMD-160 or SHA-1, are refused; a signature
 * must be a binary-document signature, made after its key, not in the
 * future, not expired, with no unknown critical subpacket.
 *
 * Signing subkeys count when bound by the primary key and cross-certified
 * by their own back signature (as GnuPG requires), and not revoked or
 * expired. Anything outside that — version 3, 5 or 6 packets, DSA, ECDSA —
 * is answered `unsupported`, and the caller checks that signature with
 * openpgp.js instead (bootstrap/pgp.ts, bootstrap/rpm/header.ts).
 */
import { createHash, createPublicKey, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { VerifyError } from '../errors.js';

/** One transferable public key (primary key, user IDs, self-signatures). */
export interface Certificate {
  /** Version 4 fingerprint, uppercase hex ('' when the key is not version 4). */
  fingerprint: string;
  /** Primary key ID, uppercase hex, 16 digits. */
  keyId: string;
  /** Key IDs of the subkeys, uppercase hex. */
  subkeyIds: string[];
  /** Subkeys bound to this certificate that may sign (valid binding and back signatures), with their own validity. */
  signingSubkeys: SigningSubkey[];
  /** Whether the primary key itself may sign data (its key flags). */
  signs?: boolean;
  userIds: string[];
  /** Primary key creation, seconds since the epoch. */
  created: number;
  /** node's key object, when the algorithm is one this module checks. */
  key?: KeyObject;
  algorithm: number;
  /** Why the certificate cannot sign now, or undefined when it can (judged when read; see unusableAt). */
  unusable?: string;
  /** What makes it unusable at any time (algorithm, strength, self-signatures, key flags). */
  problem?: string;
  revoked?: boolean;
  /** Expiry, seconds since the epoch (0: never). */
  expires?: number;
}

/** A signing subkey (RFC 4880 §5.2.1: 0x18 binding by the primary, 0x19 back signature by the subkey). */
export interface SigningSubkey {
  keyId: string;
  key?: KeyObject;
  algorithm: number;
  created: number;
  revoked: boolean;
  /** Expiry, seconds since the epoch (0: never). */
  expires: number;
}

/**
 * Why a certificate cannot sign at `now` (seconds since the epoch), or
 * undefined when it can.
 */
export function unusableAt(cert: Certificate, now: number): string | undefined {
  if (cert.problem) return cert.problem;
  if (cert.revoked) return 'is revoked';
  if (cert.expires && cert.expires <= now) return 'expired';
  return undefined;
}

/** Certificates read from keyring data, and that data (for the openpgp.js fallback). */
export interface TrustedKeys {
  certificates: Certificate[];
  raw: Buffer[];
}

/** The outcome of checking one signature packet. */
export type SignatureCheck =
  | { result: 'good'; keyId: string; fingerprint: string; created: number; certificate: Certificate }
  | { result: 'bad' | 'unknown-key' | 'unusable-key' | 'expired'; keyId: string; why: string }
  | { result: 'unsupported'; keyId: string; why: string };

const HASHES: Record<number, string> = { 1: 'md5', 2: 'sha1', 3: 'ripemd160', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };
/** Hashes refused for data signatures (openpgp.js's rejectMessageHashAlgorithms) and for self-signatures (rejectHashAlgorithms). */
const WEAK_FOR_DATA = new Set([1, 2, 3]);
const WEAK_FOR_KEYS = new Set([1, 3]);
const ED25519_OID = Buffer.from('2b06010401da470f01', 'hex');
const ALG = { RSA: 1, RSA_SIGN: 3, EDDSA_LEGACY: 22, ED25519: 27 } as const;

interface Packet {
  tag: number;
  body: Buffer;
}

/** A parsed version 4 signature packet. */
interface Sig {
  type: number;
  algorithm: number;
  hash: number;
  /** Bytes hashed after the data: the packet from its version to the hashed subpackets, then the v4 trailer. */
  trailer: Buffer;
  created?: number;
  expires?: number;
  keyExpires?: number;
  keyFlags?: number;
  issuer?: string;
  criticalUnknown?: number;
  mpis: Buffer[];
  /** Algorithm 27's native 64-byte signature. */
  raw?: Buffer;
  /** An embedded signature (subpacket 32: a signing subkey's back signature), as a packet body. */
  embedded?: Buffer;
}

/**
 * Reads every certificate in keyring data: armored blocks (one file may hold
 * several) or binary packets. Throws VerifyError when the data is not
 * OpenPGP at all.
 *
 * @example
 * const keys = readTrustedKeys([readFileSync('RPM-GPG-KEY-fedora-40-primary')]);
 * keys.certificates[0].fingerprint; // '115DF9AEF857853EE8445D0A0727707EA15B79CC'
 */
export function readTrustedKeys(sources: Array<Buffer | string>, now = Date.now() / 1000): TrustedKeys {
  const certificates: Certificate[] = [];
  const raw: Buffer[] = [];
  for (const src of sources) {
    const data = typeof src === 'string' ? Buffer.from(src, 'latin1') : src;
    raw.push(data);
    const blocks = isArmored(data) ? dearmor(data.toString('latin1')) : [data];
    for (const block of blocks) certificates.push(...certificatesOf(packets(block), now));
  }
  return { certificates, raw };
}

/**
 * Checks a bare signature packet (binary-document signature) over `data`
 * against the trusted certificates.
 *
 * @example
 * const r = checkSignature(headerBytes, rsaHeaderTag, keys.certificates);
 * if (r.result === 'good') …
 */
export function checkSignature(data: Buffer, packet: Buffer, certs: Certificate[], opts: { type?: number; now?: number } = {}): SignatureCheck {
  const now = opts.now ?? Date.now() / 1000;
  const type = opts.type ?? 0x00;
  let sig: Sig;
  try {
    const ps = packets(packet);
    if (ps.length !== 1 || ps[0]!.tag !== 2) return { result: 'bad', keyId: '', why: 'not a signature packet' };
    const parsed = parseSignature(ps[0]!.body);
    if (!parsed) return { result: 'unsupported', keyId: '', why: 'not a version 4 signature' };
    sig = parsed;
  } catch (err) {
    return { result: 'bad', keyId: '', why: `unreadable signature (${(err as Error).message})` };
  }
  const keyId = sig.issuer ?? '';
  let cert = certs.find((c) => c.keyId === keyId);
  let signer: { key?: KeyObject; algorithm: number; created: number } | undefined = cert;
  let subUnusable: string | undefined;
  if (cert) {
    if (cert.key && !cert.problem && !cert.signs) return { result: 'unusable-key', keyId, why: `key 0x${keyId} may not sign data` };
  } else {
    cert = certs.find((c) => c.signingSubkeys.some((k) => k.keyId === keyId));
    const sub = cert?.signingSubkeys.find((k) => k.keyId === keyId);
    if (!cert || !sub) {
      if (certs.some((c) => c.subkeyIds.includes(keyId) || !c.fingerprint)) return { result: 'unsupported', keyId, why: 'made by a subkey this module could not validate, or a key of another version' };
      return { result: 'unknown-key', keyId, why: `signed by unknown key 0x${keyId || '(no issuer)'}` };
    }
    signer = sub;
    subUnusable = sub.revoked ? 'is revoked' : sub.expires && sub.expires <= now ? 'expired' : undefined;
  }
  if (!signer!.key) return { result: 'unsupported', keyId, why: `public-key algorithm ${signer!.algorithm}` };
  const unusable = unusableAt(cert, now) ?? subUnusable;
  if (unusable) return { result: 'unusable-key', keyId, why: `key 0x${keyId} ${unusable}` };
  if (sig.type !== type) return { result: 'bad', keyId, why: `signature type 0x${sig.type.toString(16)}, expected 0x${type.toString(16).padStart(2, '0')}` };
  if (!HASHES[sig.hash] || WEAK_FOR_DATA.has(sig.hash)) return { result: 'unsupported', keyId, why: `hash algorithm ${sig.hash}` };
  if (sig.criticalUnknown !== undefined) return { result: 'bad', keyId, why: `unknown critical subpacket ${sig.criticalUnknown}` };
  if (sig.created === undefined) return { result: 'bad', keyId, why: 'no creation time' };
  if (sig.created < signer!.created) return { result: 'bad', keyId, why: 'signature is older than its key' };
  if (sig.created > now) return { result: 'bad', keyId, why: 'signature is from the future' };
  if (sig.expires && sig.created + sig.expires <= now) return { result: 'expired', keyId, why: `signature by 0x${keyId} expired` };
  if (!verifyMath(signer!, sig, [data])) return { result: 'bad', keyId, why: 'the signed data or the signature was changed' };
  return { result: 'good', keyId, fingerprint: cert.fingerprint, created: sig.created, certificate: cert };
}

/**
 * The signature packets of detached signature data (armored `PGP
 * SIGNATURE` blocks or binary packets), e.g. a Release.gpg.
 *
 * @example
 * for (const p of readSignaturePackets(releaseGpg)) checkSignature(release, p, certs);
 */
export function readSignaturePackets(data: Buffer | string): Buffer[] {
  const text = typeof data === 'string' ? data : data.subarray(0, 64).toString('latin1');
  const bins = text.trimStart().startsWith('-----BEGIN PGP SIGNATURE-----')
    ? dearmor(typeof data === 'string' ? data : data.toString('latin1'), 'SIGNATURE')
    : [typeof data === 'string' ? Buffer.from(data, 'latin1') : data];
  const out: Buffer[] = [];
  for (const bin of bins) for (const p of packets(bin)) if (p.tag === 2) out.push(p.raw);
  return out;
}

/**
 * Splits a cleartext-signed message (RFC 4880 §7: an InRelease file) into
 * the text it signs and its signature packets. `text` is what the
 * signatures cover, as text: dash-escaping undone, trailing whitespace of
 * each line removed, lines joined with \n, no final line break (`signed` is
 * the same with \r\n, as hashed). Undefined when it is not such a message.
 *
 * @example
 * const { text, signed, signatures } = parseCleartext(inRelease)!;
 */
export function parseCleartext(message: string): { text: string; signed: Buffer; signatures: Buffer[] } | undefined {
  const lines = message.split(/\r?\n/);
  let i = 0;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  if (lines[i] !== '-----BEGIN PGP SIGNED MESSAGE-----') return undefined;
  for (i++; i < lines.length && lines[i] !== ''; i++) if (!/^[A-Za-z]+: /.test(lines[i]!)) return undefined; // armor headers (Hash: …)
  const body: string[] = [];
  for (i++; i < lines.length && lines[i] !== '-----BEGIN PGP SIGNATURE-----'; i++) {
    const l = lines[i]!;
    body.push((l.startsWith('- ') ? l.slice(2) : l).replace(/[ \t]+$/, ''));
  }
  if (i >= lines.length) return undefined;
  let signatures: Buffer[];
  try {
    signatures = readSignaturePackets(lines.slice(i).join('\n'));
  } catch {
    return undefined;
  }
  return { text: body.join('\n'), signed: Buffer.from(body.join('\r\n'), 'utf8'), signatures };
}

/** Whether the data starts like an ASCII-armored block. */
function isArmored(data: Buffer): boolean {
  return data.subarray(0, 8192).toString('latin1').includes('-----BEGIN PGP PUBLIC KEY BLOCK-----');
}

/** The binary contents of every armored public key block in `text` (a leading `gpg --list-keys` line is skipped). */
function dearmor(text: string, kind = 'PUBLIC KEY BLOCK'): Buffer[] {
  const out: Buffer[] = [];
  const re = new RegExp(`-----BEGIN PGP ${kind}-----\\r?\\n([\\s\\S]*?)-----END PGP ${kind}-----`, 'g');
  for (let m; (m = re.exec(text)); ) {
    const lines = m[1]!.split(/\r?\n/);
    const blank = lines.findIndex((l) => l.trim() === '');
    const body = lines.slice(blank + 1).filter((l) => l.trim() && !l.startsWith('='));
    out.push(Buffer.from(body.join(''), 'base64'));
  }
  if (!out.length) throw new VerifyError(`cannot read OpenPGP data: no complete armored ${kind.toLowerCase()}`);
  return out;
}

/** Splits binary OpenPGP data into packets (old and new formats; partial lengths are refused: keys and signatures never use them). */
function packets(data: Buffer): Array<Packet & { raw: Buffer }> {
  const out: Array<Packet & { raw: Buffer }> = [];
  let o = 0;
  while (o < data.length) {
    const begin = o;
    const b = data[o++]!;
    if (!(b & 0x80)) throw new VerifyError('cannot read OpenPGP data: not a packet');
    let tag: number;
    let len: number;
    if (b & 0x40) {
      tag = b & 0x3f;
      const l0 = data[o++]!;
      if (l0 < 192) len = l0;
      else if (l0 < 224) len = ((l0 - 192) << 8) + data[o++]! + 192;
      else if (l0 === 255) { len = data.readUInt32BE(o); o += 4; }
      else throw new VerifyError('cannot read OpenPGP data: partial packet lengths are not used in keys or signatures');
    } else {
      tag = (b >> 2) & 0x0f;
      switch (b & 3) {
        case 0: len = data[o++]!; break;
        case 1: len = data.readUInt16BE(o); o += 2; break;
        case 2: len = data.readUInt32BE(o); o += 4; break;
        default: len = data.length - o;
      }
    }
    if (o + len > data.length) throw new VerifyError('cannot read OpenPGP data: truncated packet');
    out.push({ tag, body: data.subarray(o, o + len), raw: data.subarray(begin, o + len) });
    o += len;
  }
  return out;
}

/** MPIs from `at`: [values…], offset after them. */
function mpis(body: Buffer, at: number, n: number): [Buffer[], number] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const bits = body.readUInt16BE(at);
    const bytes = (bits + 7) >> 3;
    out.push(body.subarray(at + 2, at + 2 + bytes));
    at += 2 + bytes;
  }
  return [out, at];
}

const b64url = (b: Buffer) => b.toString('base64url');

/** The key object and algorithm of a version 4 public key packet body, or undefined for what this module does not check. */
function publicKey(body: Buffer): { key?: KeyObject; algorithm: number; created: number; bits?: number } {
  const created = body.readUInt32BE(1);
  const algorithm = body[5]!;
  try {
    if (algorithm === ALG.RSA || algorithm === ALG.RSA_SIGN) {
      const [[n, e]] = mpis(body, 6, 2);
      return { key: createPublicKey({ key: { kty: 'RSA', n: b64url(n!), e: b64url(e!) }, format: 'jwk' }), algorithm, created, bits: body.readUInt16BE(6) };
    }
    if (algorithm === ALG.EDDSA_LEGACY) {
      const oidLen = body[6]!;
      if (!body.subarray(7, 7 + oidLen).equals(ED25519_OID)) return { algorithm, created };
      const [[point]] = mpis(body, 7 + oidLen, 1);
      if (point!.length !== 33 || point![0] !== 0x40) return { algorithm, created };
      return { key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(point!.subarray(1)) }, format: 'jwk' }), algorithm, created };
    }
    if (algorithm === ALG.ED25519) {
      return { key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(body.subarray(6, 38)) }, format: 'jwk' }), algorithm, created };
    }
  } catch {
    /* malformed key material: not usable */
  }
  return { algorithm, created };
}

/** What a v4 key packet is hashed as in its fingerprint and in signatures over it. */
function keyHashPrefix(body: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = 0x99;
  h.writeUInt16BE(body.length, 1);
  return Buffer.concat([h, body]);
}

function keyIdOf(body: Buffer): { fingerprint: string; keyId: string } {
  const fingerprint = createHash('sha1').update(keyHashPrefix(body)).digest('hex').toUpperCase();
  return { fingerprint, keyId: fingerprint.slice(-16) };
}

/** Parses a version 4 signature packet body (undefined for other versions). */
function parseSignature(body: Buffer): Sig | undefined {
  if (body[0] !== 4) return undefined;
  const type = body[1]!;
  const algorithm = body[2]!;
  const hash = body[3]!;
  const hashedLen = body.readUInt16BE(4);
  const hashedEnd = 6 + hashedLen;
  const unhashedLen = body.readUInt16BE(hashedEnd);
  const unhashedEnd = hashedEnd + 2 + unhashedLen;
  if (unhashedEnd + 2 > body.length) throw new Error('truncated signature');
  const tail = Buffer.alloc(6);
  tail[0] = 4;
  tail[1] = 0xff;
  tail.writeUInt32BE(hashedEnd, 2);
  const sig: Sig = { type, algorithm, hash, trailer: Buffer.concat([body.subarray(0, hashedEnd), tail]), mpis: [] };
  subpackets(body.subarray(6, hashedEnd), sig, true);
  subpackets(body.subarray(hashedEnd + 2, unhashedEnd), sig, false);
  const at = unhashedEnd + 2; // after the 2-byte hash prefix
  if (algorithm === ALG.RSA || algorithm === ALG.RSA_SIGN) sig.mpis = mpis(body, at, 1)[0];
  else if (algorithm === ALG.EDDSA_LEGACY) sig.mpis = mpis(body, at, 2)[0];
  else if (algorithm === ALG.ED25519) sig.raw = body.subarray(at, at + 64);
  return sig;
}

/** Reads the subpackets this module needs; issuer information is taken from either area, everything else only from the hashed one. */
function subpackets(area: Buffer, sig: Sig, hashed: boolean): void {
  let o = 0;
  while (o < area.length) {
    let len = area[o++]!;
    if (len >= 192 && len < 255) len = ((len - 192) << 8) + area[o++]! + 192;
    else if (len === 255) { len = area.readUInt32BE(o); o += 4; }
    if (len < 1 || o + len > area.length) throw new Error('bad subpacket length');
    const type = area[o]! & 0x7f;
    const critical = (area[o]! & 0x80) !== 0;
    const data = area.subarray(o + 1, o + len);
    o += len;
    if (type === 16 && data.length === 8) sig.issuer ??= data.toString('hex').toUpperCase();
    else if (type === 32) sig.embedded ??= data;
    else if (type === 33 && data[0] === 4 && data.length === 21) sig.issuer = data.subarray(-8).toString('hex').toUpperCase();
    if (!hashed) continue;
    switch (type) {
      case 2: sig.created = data.readUInt32BE(0); break;
      case 3: sig.expires = data.readUInt32BE(0); break;
      case 9: sig.keyExpires = data.readUInt32BE(0); break;
      case 27: sig.keyFlags = data[0] ?? 0; break;
      // known, and nothing to act on here: trust, regexp, revocable, preferences, key server, primary user ID, policy, features, notations, reason, target, embedded, issuer
      case 4: case 5: case 6: case 7: case 11: case 12: case 16: case 20: case 21: case 22: case 23: case 24: case 25: case 26: case 29: case 30: case 31: case 32: case 33: case 34: case 35: case 39: break;
      default: if (critical) sig.criticalUnknown ??= type;
    }
  }
}

/** The signature mathematics over `parts` followed by the signature's trailer. */
function verifyMath(cert: { key?: KeyObject; algorithm: number }, sig: Sig, parts: Buffer[]): boolean {
  const hashName = HASHES[sig.hash];
  if (!hashName || !cert.key || sig.algorithm !== cert.algorithm && !(isRsa(sig.algorithm) && isRsa(cert.algorithm))) return false;
  const signed = Buffer.concat([...parts, sig.trailer]);
  try {
    if (isRsa(sig.algorithm)) {
      const size = ((cert.key.asymmetricKeyDetails?.modulusLength ?? 0) + 7) >> 3;
      const s = sig.mpis[0];
      if (!s || s.length > size) return false;
      const padded = Buffer.concat([Buffer.alloc(size - s.length), s]);
      return cryptoVerify(hashName, signed, { key: cert.key, padding: constants.RSA_PKCS1_PADDING }, padded);
    }
    // EdDSA signs the digest, not the data
    const digest = createHash(hashName).update(signed).digest();
    const raw = sig.algorithm === ALG.ED25519 ? sig.raw : Buffer.concat(sig.mpis.map((m) => Buffer.concat([Buffer.alloc(Math.max(0, 32 - m.length)), m])));
    if (!raw || raw.length !== 64) return false;
    return cryptoVerify(null, digest, cert.key, raw);
  } catch {
    return false;
  }
}

const isRsa = (a: number) => a === ALG.RSA || a === ALG.RSA_SIGN;

/**
 * Groups packets into certificates and judges each by its self-signatures
 * (the checks openpgp.js makes before a key may verify anything).
 */
function certificatesOf(ps: Packet[], now: number): Certificate[] {
  const out: Certificate[] = [];
  let i = 0;
  while (i < ps.length) {
    if (ps[i]!.tag !== 6) { i++; continue; }
    const keyBody = ps[i++]!.body;
    const group: Packet[] = [];
    while (i < ps.length && ps[i]!.tag !== 6) group.push(ps[i++]!);
    if (keyBody[0] !== 4) {
      out.push({ fingerprint: '', keyId: '', subkeyIds: [], signingSubkeys: [], userIds: [], created: 0, algorithm: -1, problem: `is a version ${keyBody[0]} key`, unusable: `is a version ${keyBody[0]} key` });
      continue;
    }
    const pk = publicKey(keyBody);
    const cert: Certificate = { ...keyIdOf(keyBody), subkeyIds: [], signingSubkeys: [], userIds: [], created: pk.created, algorithm: pk.algorithm, key: pk.key };
    const keyPart = keyHashPrefix(keyBody);
    let revoked = false;
    let best: Sig | undefined;
    let uid: Buffer | undefined;
    const subkeys: Array<{ body: Buffer; sigs: Buffer[] }> = [];
    const ok = (sig: Sig | undefined): sig is Sig =>
      !!sig && (sig.issuer === undefined || sig.issuer === cert.keyId) && !WEAK_FOR_KEYS.has(sig.hash) && sig.criticalUnknown === undefined;
    const current = (sig: Sig) => sig.created !== undefined && sig.created <= now && !(sig.expires && sig.created + sig.expires <= now);
    let inSubkey = false;
    for (const p of group) {
      if (p.tag === 13 || p.tag === 17) { uid = p.tag === 13 ? p.body : undefined; inSubkey = false; if (p.tag === 13) cert.userIds.push(p.body.toString('utf8')); continue; }
      if (p.tag === 14) { cert.subkeyIds.push(keyIdOf(p.body).keyId); subkeys.push({ body: p.body, sigs: [] }); inSubkey = true; uid = undefined; continue; }
      if (p.tag !== 2 || !cert.key) continue;
      if (inSubkey) { subkeys[subkeys.length - 1]!.sigs.push(p.body); continue; }
      let sig: Sig | undefined;
      try { sig = parseSignature(p.body); } catch { continue; }
      if (!ok(sig)) continue;
      if (sig.type === 0x20 && !uid) {
        if (verifyMath(cert, sig, [keyPart])) revoked = true;
      } else if (sig.type >= 0x10 && sig.type <= 0x13 && uid) {
        const u = Buffer.alloc(5);
        u[0] = 0xb4;
        u.writeUInt32BE(uid.length, 1);
        if (!current(sig)) continue;
        if (!verifyMath(cert, sig, [keyPart, u, uid])) continue;
        if (!best || (sig.created ?? 0) > (best.created ?? 0)) best = sig;
      }
    }
    // Signing subkeys: bound by the primary (0x18, the latest valid one counts), not revoked (0x28),
    // and cross-certified by a back signature (0x19) the subkey made, as GnuPG requires.
    for (const sk of cert.key ? subkeys : []) {
      const subPart = keyHashPrefix(sk.body);
      const spk = publicKey(sk.body);
      let binding: Sig | undefined;
      let subRevoked = false;
      for (const body of sk.sigs) {
        let sig: Sig | undefined;
        try { sig = parseSignature(body); } catch { continue; }
        if (!ok(sig)) continue;
        if (sig.type === 0x28 && verifyMath(cert, sig, [keyPart, subPart])) subRevoked = true;
        else if (sig.type === 0x18 && current(sig) && verifyMath(cert, sig, [keyPart, subPart]) && (!binding || sig.created! > binding.created!)) binding = sig;
      }
      if (!binding || (binding.keyFlags !== undefined && !(binding.keyFlags & 0x02)) || !binding.embedded || !spk.key) continue;
      let back: Sig | undefined;
      try { back = parseSignature(binding.embedded); } catch { continue; }
      if (!back || back.type !== 0x19 || WEAK_FOR_KEYS.has(back.hash) || !verifyMath(spk, back, [keyPart, subPart])) continue;
      cert.signingSubkeys.push({
        keyId: keyIdOf(sk.body).keyId, key: spk.key, algorithm: spk.algorithm, created: spk.created, revoked: subRevoked,
        expires: binding.keyExpires ? spk.created + binding.keyExpires : 0,
      });
    }
    if (!cert.key) cert.problem = `uses public-key algorithm ${pk.algorithm}`;
    else if (pk.bits !== undefined && pk.bits < 2047) cert.problem = `is too weak (RSA ${pk.bits} bits)`;
    else if (!best) cert.problem = 'has no valid self-signature';
    cert.signs = !!best && (best.keyFlags === undefined || (best.keyFlags & 0x02) !== 0);
    cert.revoked = revoked;
    cert.expires = best?.keyExpires ? cert.created + best.keyExpires : 0;
    cert.unusable = unusableAt(cert, now) ?? (cert.signs || cert.signingSubkeys.length ? undefined : 'may not sign data');
    out.push(cert);
  }
  return out;
}
