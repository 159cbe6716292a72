/**
 * From raw InRelease (or Release + Release.gpg) bytes to a trusted Release:
 * signature (shared `bootstrap/pgp.ts`), then parse only the signed text,
 * then suite and freshness checks. The order matters: nothing of an
 * unverified file is parsed.
 */
import { createHash } from 'node:crypto';
import { VerifyError } from '../../errors.js';
import { verifyCleartext, verifyDetached, type Keyring, type Signer } from '../pgp.js';
import { checkFreshness, checkSuite, parseRelease, stripClearsign, type Release, type ReleaseEntry } from './release.js';

/** What the mirror served for one suite. */
export type ReleaseFiles = { inRelease: string } | { release: Uint8Array; releaseGpg: Uint8Array };

/** Options for `trustRelease`. */
export interface TrustOptions {
  /** The suite as requested (`trixie`, `stable`, `trixie-security`). */
  suite: string;
  /** Keys to trust; ignored with `noVerify`. */
  keyring?: Keyring;
  /** Skip the signature (`--no-verify`): the caller must warn. Checksums still apply. */
  noVerify?: boolean;
  /** URL for messages. */
  what?: string;
  now?: Date;
  ignoreValidUntil?: boolean;
}

/** A Release that passed every check, and who signed it. */
export interface TrustedRelease {
  release: Release;
  signers: Signer[];
  /** The signed text (what dpkg/apt would store as the list file). */
  text: string;
}

/**
 * Verifies and parses a suite's Release.
 *
 * @example
 * const ring = await loadKeyringFiles([DEBIAN_KEYRING]);
 * const { release, signers } = await trustRelease({ inRelease }, { suite: 'trixie', keyring: ring, what: url });
 * signers.map((s) => s.userId) // ['Debian Archive Automatic Signing Key (13/trixie) <…>', …]
 */
export async function trustRelease(files: ReleaseFiles, opts: TrustOptions): Promise<TrustedRelease> {
  const what = opts.what ?? `${opts.suite}/InRelease`;
  let text: string;
  let signers: Signer[] = [];
  if ('inRelease' in files) {
    if (opts.noVerify) text = stripClearsign(files.inRelease);
    else {
      if (!opts.keyring) throw new VerifyError(`cannot verify \`${what}\`: no keyring`, { hint: 'pass --keyring FILE' });
      ({ text, signers } = await verifyCleartext(files.inRelease, opts.keyring, { what, date: opts.now }));
    }
  } else {
    if (!opts.noVerify) {
      if (!opts.keyring) throw new VerifyError(`cannot verify \`${what}\`: no keyring`, { hint: 'pass --keyring FILE' });
      ({ signers } = await verifyDetached(files.release, files.releaseGpg, opts.keyring, { what, date: opts.now }));
    }
    text = Buffer.from(files.release).toString('utf8');
  }
  const release = parseRelease(text);
  checkSuite(release, opts.suite);
  checkFreshness(release, opts.suite, { now: opts.now, ignoreValidUntil: opts.ignoreValidUntil });
  return { release, signers, text };
}

/**
 * Checks bytes against a Release entry (size, then SHA256).
 *
 * @example
 * checkDigest(packagesXz, release.files.get('main/binary-amd64/Packages.xz')!, url);
 */
export function checkDigest(data: Uint8Array, expected: ReleaseEntry, what: string): void {
  if (data.length !== expected.size) {
    throw new VerifyError(`cannot verify \`${what}\`: size ${data.length}, expected ${expected.size}`, { hint: 'the mirror may be syncing; retry later or use another --mirror' });
  }
  const got = createHash('sha256').update(data).digest('hex');
  if (got !== expected.sha256) {
    throw new VerifyError(`cannot verify \`${what}\`: SHA256 ${got}, expected ${expected.sha256}`, { hint: 'the file was corrupted or tampered with; retry, or use another --mirror' });
  }
}
