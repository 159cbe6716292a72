/**
 * OpenPGP checks for both engines. Version 4 keys and signatures by RSA
 * and Ed25519 keys — every Debian and Fedora archive key — are checked by
 * bootstrap/pgp-lite.ts with node:crypto; anything else by openpgp 6,
 * imported only then (it costs ~100 ms to load and tens of ms per check,
 * measured on an InRelease).
 *
 * - Debian: InRelease (cleartext-signed; the *signed text openpgp returns*
 *   is what callers parse, never the raw file, so nothing outside the
 *   signature can sneak in) or Release + Release.gpg (detached).
 * - RPM: header signatures are bare signature packets over the header
 *   bytes; `verifySignaturePacket` is the primitive the rpm engine calls.
 *
 * A check passes when at least one signature verifies with a key of the
 * keyring; every good signer is reported. Otherwise a VerifyError says why:
 * "bad signature", "signature expired", "key … expired" or "signed by
 * unknown key 0x…".
 */
import { readFile } from 'node:fs/promises';
import type { Key, Signature } from 'openpgp';
import { VerifyError } from '../errors.js';
import { checkSignature, parseCleartext, readSignaturePackets, readTrustedKeys, type SignatureCheck, type TrustedKeys } from './pgp-lite.js';

type OpenPGP = typeof import('openpgp');
let lib: Promise<OpenPGP> | undefined;
const openpgp = (): Promise<OpenPGP> => (lib ??= import('openpgp'));

/** Trusted public keys. */
export interface Keyring {
  /** The keys as pgp-lite read them; undefined when it could not (openpgp.js then checks everything). */
  lite?: TrustedKeys;
  /** The keys as openpgp.js objects, parsed on first use. */
  keys(): Promise<Key[]>;
  /** Primary key fingerprints, uppercase hex. */
  fingerprints: string[];
}

/** Who made a good signature. */
export interface Signer {
  /** Issuer key ID (the signing key or subkey), uppercase hex, 16 digits. */
  keyId: string;
  /** Fingerprint of the primary key that owns it, uppercase hex. */
  fingerprint: string;
  /** First user ID of that key, e.g. "Debian Stable Release Key (12/bookworm) <…>". */
  userId?: string;
  created?: Date;
}

export interface VerifyOptions {
  /** Verify as of this date (default: now). Signatures made after it count as from the future. */
  date?: Date;
  /** Name for messages, e.g. the URL of the InRelease file. */
  what?: string;
}

/**
 * Loads keys from binary keyrings (`.gpg`, many keys concatenated) and/or
 * armored files (`.asc`). Accepts file contents (Buffer/string) or paths via
 * `loadKeyringFiles`.
 *
 * @example
 * const ring = await loadKeyring([await readFile('debian-archive-keyring.gpg')]);
 * ring.fingerprints // ['4D64FEC119C2029067D6E791F8D2585B8783D481', …]
 */
export async function loadKeyring(sources: Array<Buffer | Uint8Array | string> | Buffer | Uint8Array | string): Promise<Keyring> {
  const list = (Array.isArray(sources) ? sources : [sources]).map((src) => (typeof src === 'string' ? Buffer.from(src, 'utf8') : Buffer.from(src.buffer, src.byteOffset, src.byteLength)));
  let lite: TrustedKeys | undefined;
  try {
    lite = readTrustedKeys(list);
    if (!lite.certificates.length || lite.certificates.some((c) => !c.fingerprint)) lite = undefined;
  } catch {
    lite = undefined;
  }
  if (lite) {
    let parsed: Promise<Key[]> | undefined;
    return { lite, fingerprints: lite.certificates.map((c) => c.fingerprint), keys: () => (parsed ??= openpgpKeys(list)) };
  }
  const keys = await openpgpKeys(list);
  return { keys: async () => keys, fingerprints: keys.map((k) => k.getFingerprint().toUpperCase()) };
}

/**
 * Keys as openpgp.js objects, from binary keyrings or armored files (text
 * before the armor, like the `gpg --list-keys` line Fedora's files open
 * with, is skipped): the fallback for what pgp-lite does not check.
 */
export async function openpgpKeys(list: Buffer[]): Promise<Key[]> {
  const pgp = await openpgp();
  const keys: Key[] = [];
  for (const src of list) {
    const at = src.subarray(0, 8192).toString('latin1').indexOf('-----BEGIN PGP');
    try {
      if (at >= 0) keys.push(...(await pgp.readKeys({ armoredKeys: src.subarray(at).toString('utf8') })));
      else keys.push(...(await pgp.readKeys({ binaryKeys: new Uint8Array(src) })));
    } catch (err) {
      throw new VerifyError(`cannot read OpenPGP keyring: ${(err as Error).message}`, { cause: err, hint: 'the keyring file must be an OpenPGP keyring (.gpg) or an armored key (.asc)' });
    }
  }
  return keys;
}

/**
 * Loads keyring files by path.
 *
 * @example
 * const ring = await loadKeyringFiles(['recipes/keys/debian-12.asc']);
 */
export async function loadKeyringFiles(paths: string[]): Promise<Keyring> {
  const data = await Promise.all(
    paths.map((p) =>
      readFile(p).catch((err: NodeJS.ErrnoException) => {
        throw new VerifyError(`cannot read keyring \`${p}\`: ${err.code ?? err.message}`, { cause: err });
      }),
    ),
  );
  return loadKeyring(data);
}

/** Merges keyrings. */
export function mergeKeyrings(...rings: Keyring[]): Keyring {
  const lite = rings.every((r) => r.lite) ? { certificates: rings.flatMap((r) => r.lite!.certificates), raw: rings.flatMap((r) => r.lite!.raw) } : undefined;
  return { lite, keys: async () => (await Promise.all(rings.map((r) => r.keys()))).flat(), fingerprints: rings.flatMap((r) => r.fingerprints) };
}

/**
 * Verifies a cleartext-signed message (InRelease) and returns the signed
 * text as openpgp extracted it (dash-escaping undone), plus its signers.
 *
 * @example
 * const { text, signers } = await verifyCleartext(inRelease, ring, { what: url });
 * parseRelease(text);
 */
export async function verifyCleartext(signed: string, ring: Keyring, opts: VerifyOptions = {}): Promise<{ text: string; signers: Signer[] }> {
  if (ring.lite) {
    const parsed = parseCleartext(signed);
    if (parsed) {
      const checks = parsed.signatures.map((p) => checkSignature(parsed.signed, p, ring.lite!.certificates, { type: 0x01, now: nowOf(opts) }));
      if (checks.length && !checks.some((c) => c.result === 'unsupported')) return { text: parsed.text, signers: judgeLite(checks, opts) };
    }
  }
  const pgp = await openpgp();
  let message;
  try {
    message = await pgp.readCleartextMessage({ cleartextMessage: signed });
  } catch (err) {
    throw new VerifyError(`cannot verify ${opts.what ? `\`${opts.what}\`` : 'signed message'}: not an OpenPGP cleartext-signed message`, { cause: err });
  }
  const keys = await ring.keys();
  const res = await pgp.verify({ message, verificationKeys: keys, date: opts.date, expectSigned: false });
  const signers = await judge(res.signatures, keys, opts);
  return { text: res.data as string, signers };
}

/**
 * Verifies a detached signature (Release.gpg, armored or binary) over `data`.
 *
 * @example
 * const { signers } = await verifyDetached(releaseBytes, releaseGpgBytes, ring);
 */
export async function verifyDetached(data: Uint8Array | string, signature: Uint8Array | string, ring: Keyring, opts: VerifyOptions = {}): Promise<{ signers: Signer[] }> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (ring.lite) {
    let packets: Buffer[] | undefined;
    try {
      packets = readSignaturePackets(typeof signature === 'string' ? signature : Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength));
    } catch {
      packets = undefined; // openpgp.js reports it
    }
    if (packets?.length) {
      const checks = packets.map((p) => checkSignature(bytes, p, ring.lite!.certificates, { type: 0x00, now: nowOf(opts) }));
      if (!checks.some((c) => c.result === 'unsupported')) return { signers: judgeLite(checks, opts) };
    }
  }
  const pgp = await openpgp();
  const sig = await readSig(pgp, signature, opts);
  const message = await pgp.createMessage({ binary: bytes });
  const keys = await ring.keys();
  const res = await pgp.verify({ message, signature: sig, verificationKeys: keys, date: opts.date, format: 'binary', expectSigned: false });
  return { signers: await judge(res.signatures, keys, opts) };
}

const nowOf = (opts: VerifyOptions) => (opts.date ?? new Date()).getTime() / 1000;

/** The good signers of pgp-lite's verdicts; the most telling failure when there is none (the same order as judge). */
function judgeLite(checks: SignatureCheck[], opts: VerifyOptions): Signer[] {
  const good = checks.flatMap((c) => (c.result === 'good' ? [{ keyId: c.keyId, fingerprint: c.fingerprint, userId: c.certificate.userIds[0], created: new Date(c.created * 1000) }] : []));
  if (good.length) return good;
  type Failed = Exclude<SignatureCheck, { result: 'good' }>;
  const failed = checks.filter((c): c is Failed => c.result !== 'good');
  const bad = failed.find((c) => c.result === 'bad');
  const expired = failed.find((c) => c.result === 'expired' || c.result === 'unusable-key');
  const unknown = failed.filter((c) => c.result === 'unknown-key').map((c) => `0x${c.keyId}`);
  throw failure(opts, bad && `bad signature${bad.keyId ? ` by key 0x${bad.keyId}` : ''} (${bad.why})`, expired?.why, unknown);
}

/**
 * Verifies one bare signature packet (as stored in an RPM header's
 * RSAHEADER/DSAHEADER/OPENPGP tag) over the given bytes (the header
 * region it covers). Returns the signer; throws VerifyError otherwise.
 *
 * @example
 * const signer = await verifySignaturePacket(headerBytes, sigTagValue, ring, { what: 'hello-2.12-1.x86_64.rpm' });
 */
export async function verifySignaturePacket(data: Uint8Array, packet: Uint8Array, ring: Keyring, opts: VerifyOptions = {}): Promise<Signer> {
  const { signers } = await verifyDetached(data, packet, ring, opts);
  return signers[0];
}

/** Key ID(s) a signature claims, without verifying (for messages and key lookup). */
export async function signatureKeyIds(signature: Uint8Array | string): Promise<string[]> {
  try {
    const packets = readSignaturePackets(typeof signature === 'string' ? signature : Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength));
    const ids = packets.map((p) => checkSignature(Buffer.alloc(0), p, []).keyId);
    if (ids.length && ids.every(Boolean)) return ids;
  } catch {
    /* openpgp.js below */
  }
  const pgp = await openpgp();
  const sig = await readSig(pgp, signature, {});
  return Array.from(sig.getSigningKeyIDs(), (id) => id.toHex().toUpperCase());
}

async function readSig(pgp: OpenPGP, signature: Uint8Array | string, opts: VerifyOptions): Promise<Signature> {
  try {
    const armored = typeof signature === 'string' ? signature : Buffer.from(signature.subarray(0, 64)).toString('latin1').trimStart().startsWith('-----BEGIN PGP') ? Buffer.from(signature).toString('utf8') : undefined;
    return armored !== undefined ? await pgp.readSignature({ armoredSignature: armored }) : await pgp.readSignature({ binarySignature: signature as Uint8Array });
  } catch (err) {
    throw new VerifyError(`cannot verify ${opts.what ? `\`${opts.what}\`` : 'signature'}: unreadable OpenPGP signature (${(err as Error).message})`, { cause: err });
  }
}

type VerificationResult = Awaited<ReturnType<OpenPGP['verify']>>['signatures'][number];

/** Collects the good signers; throws the most telling failure when there is none. */
async function judge(sigs: VerificationResult[], keys: Key[], opts: VerifyOptions): Promise<Signer[]> {
  const good: Signer[] = [];
  const unknown: string[] = [];
  let bad: string | undefined;
  let expired: string | undefined;
  for (const s of sigs) {
    const keyId = s.keyID.toHex().toUpperCase();
    try {
      await s.verified;
      const key = keys.find((k) => k.getKeyIDs().some((id) => id.toHex().toUpperCase() === keyId));
      // openpgp judges the key as of the signature's creation; apt (gpgv) also refuses keys expired or revoked *now*.
      await key?.getSigningKey(s.keyID, opts.date ?? new Date());
      const packet = await s.signature.then((x) => x.packets[0]).catch(() => undefined);
      good.push({ keyId, fingerprint: key?.getFingerprint().toUpperCase() ?? '', userId: key?.getUserIDs()[0], created: packet?.created ?? undefined });
    } catch (err) {
      const msg = (err as Error).message ?? '';
      if (/Could not find signing key/.test(msg)) unknown.push(keyId);
      else if (/expired/i.test(msg)) expired ??= /key/i.test(msg) ? `key 0x${keyId} expired` : `signature by 0x${keyId} expired`;
      else if (/revoked/i.test(msg)) expired ??= `key 0x${keyId} is revoked`;
      else bad ??= `bad signature by key 0x${keyId} (${msg.replace(/^Error verifying (signed )?message: /i, '')})`;
    }
  }
  if (good.length > 0) return good;
  throw failure(opts, bad, expired, unknown.map((k) => `0x${k}`));
}

/** The one error for a check with no good signature: a bad signature first, then an expired key, then unknown keys. */
function failure(opts: VerifyOptions, bad: string | undefined, expired: string | undefined, unknown: string[]): VerifyError {
  const what = opts.what ? `\`${opts.what}\`` : 'signature';
  const hint = 'the index may be tampered with or the keyring out of date; check the mirror and the distribution keys';
  if (bad) return new VerifyError(`cannot verify ${what}: ${bad}`, { hint });
  if (expired) return new VerifyError(`cannot verify ${what}: ${expired}`, { hint: 'check the system clock, or update the distribution keyring' });
  if (unknown.length) return new VerifyError(`cannot verify ${what}: signed by unknown key ${unknown.join(', ')}`, { hint: 'the keyring does not hold the key that signed it; pass the right keyring (--keyring)' });
  return new VerifyError(`cannot verify ${what}: no signature`, { hint });
}
