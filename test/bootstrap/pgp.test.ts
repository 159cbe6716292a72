import assert from 'node:assert/strict';
import * as openpgp from 'openpgp';
import { VerifyError } from '../../errors.js';
import { loadKeyring, signatureKeyIds, verifyCleartext, verifyDetached, verifySignaturePacket } from '../../bootstrap/pgp.js';

async function newKey(name: string, opts: { date?: Date; keyExpirationTime?: number } = {}) {
  const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name, email: `${name}@example.org` }], format: 'object', ...opts });
  return { privateKey, publicKey, id: privateKey.getKeyID().toHex().toUpperCase() };
}

const release = 'Origin: Debian\nSuite: stable\n- dash line\nSHA256:\n abc 12 main/binary-amd64/Packages\n';

describe('bootstrap/pgp', () => {
  let a: Awaited<ReturnType<typeof newKey>>;
  let b: Awaited<ReturnType<typeof newKey>>;
  before(async () => {
    a = await newKey('archive');
    b = await newKey('other');
  });

  const clearsign = async (text: string, keys: openpgp.PrivateKey[]) =>
    openpgp.sign({ message: await openpgp.createCleartextMessage({ text }), signingKeys: keys });

  it('loads a binary keyring holding many keys and an armored key', async () => {
    const binary = Buffer.concat([a.publicKey.write(), b.publicKey.write()]);
    const ring = await loadKeyring([binary, a.publicKey.armor()]);
    assert.deepEqual(ring.fingerprints, [a.publicKey.getFingerprint(), b.publicKey.getFingerprint(), a.publicKey.getFingerprint()].map((f) => f.toUpperCase()));
  });

  it('verifies an InRelease-style cleartext message and returns the signed text with its signer', async () => {
    const ring = await loadKeyring(a.publicKey.armor());
    const { text, signers } = await verifyCleartext(await clearsign(release, [a.privateKey]), ring);
    assert.equal(text.replace(/\n?$/, '\n'), release);
    assert.equal(signers.length, 1);
    assert.equal(signers[0].fingerprint, a.publicKey.getFingerprint().toUpperCase());
    assert.match(signers[0].userId ?? '', /archive/);
  });

  it('passes when one of several signatures is by a known key, and reports only that signer', async () => {
    const ring = await loadKeyring(a.publicKey.armor());
    const { signers } = await verifyCleartext(await clearsign(release, [b.privateKey, a.privateKey]), ring);
    assert.deepEqual(signers.map((s) => s.keyId), [a.id]);
  });

  it('fails with "bad signature" when the signed text was changed', async () => {
    const ring = await loadKeyring(a.publicKey.armor());
    const signed = (await clearsign(release, [a.privateKey])).replace('Suite: stable', 'Suite: evil');
    await assert.rejects(verifyCleartext(signed, ring, { what: 'InRelease' }), (e: unknown) => e instanceof VerifyError && /^cannot verify `InRelease`: bad signature by key 0x/.test(e.message));
  });

  it('fails with "signed by unknown key 0x…" when no key of the keyring signed', async () => {
    const ring = await loadKeyring(a.publicKey.armor());
    await assert.rejects(verifyCleartext(await clearsign(release, [b.privateKey]), ring), (e: unknown) => e instanceof VerifyError && e.message.endsWith(`signed by unknown key 0x${b.id}`));
  });

  it('fails when the signing key has expired', async () => {
    const past = new Date(Date.now() - 86_400_000);
    const old = await newKey('old', { date: past, keyExpirationTime: 3600 });
    const ring = await loadKeyring(old.publicKey.armor());
    const signed = await openpgp.sign({ message: await openpgp.createCleartextMessage({ text: release }), signingKeys: old.privateKey, date: new Date(past.getTime() + 1000) });
    await assert.rejects(verifyCleartext(signed, ring), (e: unknown) => e instanceof VerifyError && /expired/.test(e.message));
  });

  it('verifies a detached signature (Release + Release.gpg), armored or binary, and rejects changed data', async () => {
    const ring = await loadKeyring(a.publicKey.write());
    const data = Buffer.from(release);
    const armored = await openpgp.sign({ message: await openpgp.createMessage({ binary: data }), signingKeys: a.privateKey, detached: true });
    const binary = (await openpgp.readSignature({ armoredSignature: armored })).write();
    assert.equal((await verifyDetached(data, armored, ring)).signers[0].keyId, a.id);
    assert.equal((await verifyDetached(data, binary, ring)).signers[0].keyId, a.id);
    await assert.rejects(verifyDetached(Buffer.from(release.replace('abc', 'abd')), binary, ring), /bad signature/);
  });

  it('verifies a bare signature packet over bytes, as RPM headers carry it', async () => {
    const ring = await loadKeyring(a.publicKey.write());
    const header = Buffer.from(Array.from({ length: 4096 }, (_, i) => i & 0xff));
    const sig = await openpgp.sign({ message: await openpgp.createMessage({ binary: header }), signingKeys: a.privateKey, detached: true, format: 'binary' });
    const packet = Buffer.from(sig as Uint8Array);
    assert.deepEqual(await signatureKeyIds(packet), [a.id]);
    assert.equal((await verifySignaturePacket(header, packet, ring)).fingerprint, a.publicKey.getFingerprint().toUpperCase());
    const tampered = Buffer.from(header);
    tampered[100] ^= 1;
    await assert.rejects(verifySignaturePacket(tampered, packet, ring, { what: 'hello.rpm' }), /cannot verify `hello\.rpm`: bad signature/);
  });

  it('rejects a keyring that is not OpenPGP data', async () => {
    await assert.rejects(loadKeyring(Buffer.from('definitely not a key')), VerifyError);
  });
});
