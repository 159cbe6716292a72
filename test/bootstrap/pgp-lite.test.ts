/**
 * pgp-lite against keys and signatures made by GnuPG, each verdict
 * cross-checked with openpgp.js where openpgp.js has one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { checkSignature, readTrustedKeys } from '../../bootstrap/pgp-lite.js';

describe('pgp-lite: OpenPGP v4 checks with node:crypto', function () {
  this.timeout(120_000);
  let home: string;
  const data = Buffer.from('the header bytes of a package\n'.repeat(100));
  const gpg = (args: string[], input?: Buffer) =>
    execFileSync('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { ...process.env, GNUPGHOME: home }, input, stdio: ['pipe', 'pipe', 'ignore'] });
  const fpr = (who: string) => /^fpr:+([0-9A-F]{40}):/m.exec(gpg(['--with-colons', '--list-keys', `<${who}>`]).toString())![1]!;
  const sign = (who: string, opts: string[] = []) => {
    writeFileSync(join(home, 'data'), data);
    return gpg(['--yes', '--local-user', `<${who}>`, ...opts, '--output', '-', '--detach-sign', join(home, 'data')]);
  };
  const exported = (who: string) => gpg(['--export', `<${who}>`]);
  const openpgpSays = async (key: Buffer, sig: Buffer, bytes = data) => {
    const keys = await openpgp.readKeys({ binaryKeys: new Uint8Array(key) });
    const { signatures } = await openpgp.verify({
      message: await openpgp.createMessage({ binary: bytes }), signature: await openpgp.readSignature({ binarySignature: new Uint8Array(sig) }), verificationKeys: keys, format: 'binary',
    });
    return signatures[0]!.verified.then(() => true, () => false);
  };

  before(() => {
    home = mkdtempSync(join(tmpdir(), 'nsbox-pgplite-'));
    gpg(['--quick-gen-key', 'rsa <rsa@example.invalid>', 'rsa3072', 'sign', 'never']);
    gpg(['--quick-gen-key', 'ed <ed@example.invalid>', 'ed25519', 'sign', 'never']);
    gpg(['--quick-gen-key', 'other <other@example.invalid>', 'rsa2048', 'sign', 'never']);
    gpg(['--quick-gen-key', 'sub <sub@example.invalid>', 'rsa2048', 'cert', 'never']);
    gpg(['--quick-add-key', fpr('sub@example.invalid'), 'rsa2048', 'sign', 'never']);
    gpg(['--faked-system-time', '20200101T000000', '--quick-gen-key', 'old <old@example.invalid>', 'rsa2048', 'sign', '1d']);
    gpg(['--quick-gen-key', 'revoked <revoked@example.invalid>', 'rsa2048', 'sign', 'never']);
  });
  after(() => {
    try { execFileSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home } }); } catch { /* no agent */ }
    rmSync(home, { recursive: true, force: true });
  });

  it('reads RSA and Ed25519 certificates with their fingerprints, and verifies their signatures as openpgp.js does', async () => {
    for (const who of ['rsa@example.invalid', 'ed@example.invalid']) {
      const key = exported(who);
      const keys = readTrustedKeys([key]);
      assert.equal(keys.certificates.length, 1);
      const cert = keys.certificates[0]!;
      assert.equal(cert.fingerprint, fpr(who));
      assert.equal(cert.unusable, undefined, who);
      const sig = sign(who);
      assert.equal(checkSignature(data, sig, keys.certificates).result, 'good', who);
      assert.equal(await openpgpSays(key, sig), true);
      const tampered = Buffer.from(data);
      tampered[7] ^= 1;
      assert.equal(checkSignature(tampered, sig, keys.certificates).result, 'bad', who);
      assert.equal(await openpgpSays(key, sig, tampered), false);
    }
  });

  it('reads armored files, with a leading gpg listing line as Fedora ships them', () => {
    const armored = `pub  4096R/FD431D51 2009-10-26 Fedora\n${gpg(['--armor', '--export', 'rsa@example.invalid']).toString()}`;
    assert.equal(readTrustedKeys([Buffer.from(armored)]).certificates[0]!.fingerprint, fpr('rsa@example.invalid'));
  });

  it('says unknown key for another key, and unsupported for SHA-1', () => {
    const keys = readTrustedKeys([exported('rsa@example.invalid')]);
    const other = checkSignature(data, sign('other@example.invalid'), keys.certificates);
    assert.equal(other.result, 'unknown-key');
    assert.equal(other.keyId, fpr('other@example.invalid').slice(-16));
    assert.equal(checkSignature(data, sign('rsa@example.invalid', ['--digest-algo', 'SHA1']), keys.certificates).result, 'unsupported');
  });

  it('verifies a signature by a cross-certified signing subkey (as Debian signs), and refuses it once the subkey is revoked', async () => {
    const key = exported('sub@example.invalid');
    const sub = readTrustedKeys([key]);
    assert.equal(sub.certificates[0]!.signingSubkeys.length, 1);
    const sig = sign('sub@example.invalid');
    const r = checkSignature(data, sig, sub.certificates);
    assert.equal(r.result, 'good');
    assert.equal(r.keyId, sub.certificates[0]!.signingSubkeys[0]!.keyId);
    assert.equal(await openpgpSays(key, sig), true);
    const tampered = Buffer.from(data);
    tampered[3] ^= 1;
    assert.equal(checkSignature(tampered, sig, sub.certificates).result, 'bad');
    // revoke the subkey (gpg --edit-key: key 1, revkey)
    execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--command-fd', '0', '--edit-key', fpr('sub@example.invalid')], {
      env: { ...process.env, GNUPGHOME: home }, input: 'key 1\nrevkey\ny\n0\n\ny\nsave\n', stdio: ['pipe', 'ignore', 'ignore'],
    });
    const revoked = readTrustedKeys([exported('sub@example.invalid')]);
    assert.equal(checkSignature(data, sig, revoked.certificates).result, 'unusable-key');
  });

  it('refuses expired and revoked keys, and a certificate whose self-signature was altered', async () => {
    const old = readTrustedKeys([exported('old@example.invalid')]);
    assert.equal(old.certificates[0]!.unusable, 'expired');
    const sig = sign('old@example.invalid', ['--faked-system-time', '20200101T010000']);
    assert.equal(checkSignature(data, sig, old.certificates).result, 'unusable-key');

    // gpg writes a revocation certificate for every key it makes, its armor line commented out with ':'
    const rev = readFileSync(join(home, 'openpgp-revocs.d', `${fpr('revoked@example.invalid')}.rev`), 'utf8').replace(/^:-----/m, '-----');
    const before = sign('revoked@example.invalid');
    gpg(['--import'], Buffer.from(rev));
    const revoked = readTrustedKeys([exported('revoked@example.invalid')]);
    assert.equal(revoked.certificates[0]!.unusable, 'is revoked');
    assert.equal(checkSignature(data, before, revoked.certificates).result, 'unusable-key');

    const key = Buffer.from(exported('rsa@example.invalid'));
    const uid = key.indexOf(Buffer.from('rsa <rsa@'));
    key[uid] = 'R'.charCodeAt(0);
    assert.equal(readTrustedKeys([key]).certificates[0]!.unusable, 'has no valid self-signature');
    await assert.rejects(async () => {
      const [k] = await openpgp.readKeys({ binaryKeys: new Uint8Array(key) });
      await k!.getSigningKey();
    });
  });

  it('refuses what is not OpenPGP with one clear error', () => {
    assert.throws(() => readTrustedKeys([Buffer.from('RPM-GPG-KEY-fedora-46-primary')]), /cannot read OpenPGP data/);
    assert.equal(checkSignature(data, Buffer.from('garbage'), []).result, 'bad');
  });
});
