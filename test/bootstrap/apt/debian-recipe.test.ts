import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../../errors.js';
import {
  DEBIAN_KEYRING, VARIANTS, chooseMirrors, debianArch, findRelease, findVariant, hostMirrors, parseSourcesFile, parseSourcesList,
  releaseFromArchive, renderSources, securityMirrorFor, selectionFor, suitesFor,
} from '../../../recipes/debian.js';

describe('recipes/debian', () => {
  it('finds releases by codename, alias and version, and lists the known ones otherwise', () => {
    assert.equal(findRelease('stable').codename, 'trixie');
    assert.equal(findRelease('oldstable').codename, 'bookworm');
    assert.equal(findRelease('testing').codename, 'forky');
    assert.equal(findRelease('unstable').codename, 'sid');
    assert.equal(findRelease('12').codename, 'bookworm');
    assert.throws(() => findRelease('potato'), (e: Error) => e instanceof UsageError && /potato/.test(e.message) && /trixie/.test((e as UsageError).hint ?? ''));
  });

  it('lets the Release file decide what an alias means', () => {
    assert.equal(releaseFromArchive('stable', { suite: 'stable', codename: 'trixie' }).codename, 'trixie');
    assert.equal(releaseFromArchive('oldstable', { suite: 'oldstable', codename: 'trixie' }).alias, 'oldstable');
    const future = releaseFromArchive('stable', { suite: 'stable', codename: 'duke' });
    assert.deepEqual(suitesFor(future).map((s) => s.suite), ['duke', 'duke-updates', 'duke-security']);
  });

  it('adds updates and security suites for stable releases only', () => {
    assert.deepEqual(suitesFor(findRelease('trixie')), [
      { suite: 'trixie', archive: 'main' }, { suite: 'trixie-updates', archive: 'main' }, { suite: 'trixie-security', archive: 'security' },
    ]);
    assert.deepEqual(suitesFor(findRelease('trixie'), { updates: false }).map((s) => s.suite), ['trixie']);
    assert.deepEqual(suitesFor(findRelease('sid')).map((s) => s.suite), ['sid']);
  });

  it('knows the variants and the per-release adjustments debootstrap makes', () => {
    assert.deepEqual(Object.keys(VARIANTS), ['minbase', 'important', 'boot', 'buildd']);
    assert.throws(() => findVariant('fat'), (e: Error) => e instanceof UsageError && /minbase, important, boot, buildd/.test((e as UsageError).hint ?? ''));
    assert.deepEqual(selectionFor('minbase', findRelease('bookworm')).include, ['usr-is-merged']);
    assert.deepEqual(selectionFor('minbase', findRelease('trixie')).include, []);
    assert.deepEqual(selectionFor('minbase', findRelease('trixie')).exclude, ['usrmerge']);
  });

  it('reads mirrors from deb822 .sources and one-line sources.list', () => {
    const deb822 = parseSourcesFile('Types: deb\nURIs: http://mirror.example/debian/\nSuites: trixie trixie-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: trixie-security\nComponents: main\nEnabled: yes\n');
    assert.equal(deb822.length, 2);
    const list = parseSourcesList('# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian trixie main contrib\ndeb-src http://x/debian trixie main\n');
    assert.deepEqual(list[0], { types: ['deb'], uris: ['http://mirror.example/debian'], suites: ['trixie'], components: ['main', 'contrib'], signedBy: '/k.gpg', enabled: true });
    const root = mkdtempSync(join(tmpdir(), 'nsbox-apt-'));
    try {
      mkdirSync(join(root, 'etc/apt/sources.list.d'), { recursive: true });
      writeFileSync(join(root, 'etc/apt/sources.list.d/debian.sources'), 'Types: deb\nURIs: http://mirror.example/debian/\nSuites: trixie\nComponents: main\n\nTypes: deb\nURIs: http://sec.example/debian-security\nSuites: trixie-security\nComponents: main\n');
      assert.deepEqual(hostMirrors(root), { mirror: 'http://mirror.example/debian', security: 'http://sec.example/debian-security' });
      assert.deepEqual(chooseMirrors({ root }), { mirror: 'http://mirror.example/debian', security: 'http://sec.example/debian-security' });
      assert.deepEqual(chooseMirrors({ root, mirror: 'http://other.example/debian/' }), { mirror: 'http://other.example/debian', security: 'http://other.example/debian-security' });
      rmSync(join(root, 'etc/apt'), { recursive: true });
      assert.throws(() => chooseMirrors({ root }), /cannot find a Debian mirror/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    assert.equal(securityMirrorFor('http://m.example/archive/debian/20250520T000000Z'), 'http://m.example/archive/debian/20250520T000000Z-security');
  });

  it('maps architectures, renders apt sources and bundles the archive keyring', () => {
    assert.equal(debianArch('x64'), 'amd64');
    assert.equal(debianArch('arm64'), 'arm64');
    assert.throws(() => debianArch('vax'), UsageError);
    const text = renderSources({ mirror: 'http://m.example/debian', security: 'http://m.example/debian-security' }, suitesFor(findRelease('trixie')), ['main']);
    assert.match(text, /^Types: deb\nURIs: http:\/\/m.example\/debian\nSuites: trixie trixie-updates\nComponents: main\n/);
    assert.match(text, /URIs: http:\/\/m.example\/debian-security\nSuites: trixie-security\n/);
    assert.ok(existsSync(DEBIAN_KEYRING));
  });
});
