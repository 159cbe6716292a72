import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readKeys } from 'openpgp';
import { UsageError, VerifyError } from '../../../errors.js';
import {
  FEDORA_KEY_FINGERPRINTS, FEDORA_RAWHIDE, FEDORA_CURRENT, fedoraRelease, fedoraRepos, variantPackages, keySources, loadFedoraKey,
} from '../../../recipes/fedora.js';

const KEYS = fileURLToPath(new URL('../../../../shared/keys/fedora/', import.meta.url));

describe('Fedora recipe', () => {
  it('knows releases 19 to rawhide, their package manager and end of life', () => {
    assert.equal(fedoraRelease('19').packageManager, 'yum');
    assert.equal(fedoraRelease('21').packageManager, 'yum');
    assert.equal(fedoraRelease('22').packageManager, 'dnf');
    assert.equal(fedoraRelease('41').packageManager, 'dnf5');
    assert.equal(fedoraRelease().number, FEDORA_CURRENT);
    assert.ok(fedoraRelease('19').endOfLife && !fedoraRelease(String(FEDORA_CURRENT)).endOfLife);
    assert.equal(fedoraRelease('rawhide').number, FEDORA_RAWHIDE);
    for (const bad of ['18', '99', 'beefy', '']) assert.throws(() => fedoraRelease(bad), UsageError);
  });

  it('lays out mirror, archive and metalink repositories', () => {
    assert.deepEqual(fedoraRepos(fedoraRelease('40'), 'x86_64', { mirror: 'http://m/' }).map((r) => r.baseUrl), [
      'http://m/releases/40/Everything/x86_64/os/', 'http://m/updates/40/Everything/x86_64/',
    ]);
    assert.deepEqual(fedoraRepos(fedoraRelease('19'), 'x86_64').map((r) => r.baseUrl), [
      'https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/19/Everything/x86_64/os/',
      'https://archives.fedoraproject.org/pub/archive/fedora/linux/updates/19/x86_64/',
    ]);
    assert.deepEqual(fedoraRepos(fedoraRelease(String(FEDORA_CURRENT)), 'x86_64').map((r) => r.metalink), [
      `https://mirrors.fedoraproject.org/metalink?repo=fedora-${FEDORA_CURRENT}&arch=x86_64`,
      `https://mirrors.fedoraproject.org/metalink?repo=updates-released-f${FEDORA_CURRENT}&arch=x86_64`,
    ]);
    assert.equal(fedoraRepos(fedoraRelease('rawhide'), 'x86_64', { mirror: 'http://m' })[0]!.baseUrl, 'http://m/development/rawhide/Everything/x86_64/os/');
  });

  it('names the package set of each variant', () => {
    assert.deepEqual(variantPackages(fedoraRelease('19'), 'minimal'), ['bash', 'coreutils', 'rpm', 'yum', 'fedora-release']);
    assert.ok(variantPackages(fedoraRelease('40'), 'boot').includes('systemd'));
    assert.deepEqual(keySources(fedoraRelease('40'), { keyring: '/k' }).map((s) => s.kind), ['keyring', 'host', 'host', 'https']);
  });

  it('pins a fingerprint that matches every real Fedora key in shared/keys', async function () {
    if (!existsSync(KEYS)) this.skip(); // the keys live beside the checkout, not in it
    const files = readdirSync(KEYS).filter((f) => /^RPM-GPG-KEY-fedora-(\d+|rawhide)-primary$/.test(f));
    assert.ok(files.length >= 29);
    for (const f of files) {
      let text = readFileSync(join(KEYS, f), 'utf8');
      let release = f.split('-')[4]!;
      if (!text.includes('BEGIN PGP')) {
        // the rawhide file names the key file it stands for
        release = /fedora-(\d+)-primary/.exec(text)![1]!;
        text = readFileSync(join(KEYS, text.trim()), 'utf8');
        assert.equal(Number(release), FEDORA_RAWHIDE, 'rawhide is the release FEDORA_RAWHIDE says');
      }
      const [key] = await readKeys({ armoredKeys: text });
      assert.equal(key!.getFingerprint().toUpperCase(), FEDORA_KEY_FINGERPRINTS[Number(release)], f);
    }
  });

  it('accepts a key only when its fingerprint matches the pin', async function () {
    if (!existsSync(KEYS)) this.skip();
    const noNet = async () => { throw new Error('offline'); };
    const { source } = await loadFedoraKey(fedoraRelease('40'), { keyring: realpathSync(join(KEYS, 'RPM-GPG-KEY-fedora-40-primary')), fetchText: noNet });
    assert.equal(source.kind, 'keyring');
    await assert.rejects(loadFedoraKey(fedoraRelease('40'), { keyring: join(KEYS, 'RPM-GPG-KEY-fedora-39-primary'), fetchText: noNet }), (e: unknown) =>
      e instanceof VerifyError && /115DF9AEF857853EE8445D0A0727707EA15B79CC/.test(e.message) && /E8F23996F23218640CB44CBE75CF5AC418B8E74C/.test(e.hint ?? ''));
  });
});
