import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../../errors.js';
import { archiveUrl, isArchiveUrl } from '../../../bootstrap/apt/url.js';
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
      assert.deepEqual(chooseMirrors({ root }), { mirror: 'http://mirror.example/debian', security: ['http://sec.example/debian-security', 'http://mirror.example/debian-security'] });
      // --mirror: its own sibling first, the host's security archive after it
      assert.deepEqual(chooseMirrors({ root, mirror: 'http://other.example/debian/' }), { mirror: 'http://other.example/debian', security: ['http://other.example/debian-security', 'http://sec.example/debian-security'] });
      // a proxy or local mirror with no path has no sibling: the host's security archive only
      assert.deepEqual(chooseMirrors({ root, mirror: 'http://127.0.0.1:3142' }), { mirror: 'http://127.0.0.1:3142', security: ['http://sec.example/debian-security'] });
      rmSync(join(root, 'etc/apt'), { recursive: true });
      assert.deepEqual(chooseMirrors({ root, mirror: 'http://127.0.0.1:3142/' }), { mirror: 'http://127.0.0.1:3142', security: [] });
      assert.throws(() => chooseMirrors({ root }), /cannot find a Debian mirror/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('finds the security archive beside a mirror by its `debian` path segment, or none', () => {
    assert.equal(securityMirrorFor('http://m.example/debian'), 'http://m.example/debian-security');
    assert.equal(securityMirrorFor('http://m.example/debian/'), 'http://m.example/debian-security');
    // snapshot mirrors: /archive/debian/DATE beside /archive/debian-security/DATE
    assert.equal(securityMirrorFor('http://m.example/archive/debian/20250520T000000Z'), 'http://m.example/archive/debian-security/20250520T000000Z');
    assert.equal(securityMirrorFor('http://127.0.0.1:3142'), undefined);
    assert.equal(securityMirrorFor('http://127.0.0.1:3142/mirror/'), undefined);
    assert.equal(securityMirrorFor('file:///srv/debian'), 'file:///srv/debian-security');
  });

  it('builds archive URLs with or without a path and a trailing slash', () => {
    assert.equal(archiveUrl('http://127.0.0.1:3142', 'dists/trixie/InRelease'), 'http://127.0.0.1:3142/dists/trixie/InRelease');
    assert.equal(archiveUrl('http://127.0.0.1:3142/', 'dists/trixie-security/InRelease'), 'http://127.0.0.1:3142/dists/trixie-security/InRelease');
    assert.equal(archiveUrl('http://m.example/debian', 'pool/main/g/gcc-14/libgcc-s1_14.2.0-19_amd64.deb'), 'http://m.example/debian/pool/main/g/gcc-14/libgcc-s1_14.2.0-19_amd64.deb');
    assert.equal(archiveUrl('http://m.example/debian/', '/pool/main/a/a+b/a+b_1~rc1_amd64.deb'), 'http://m.example/debian/pool/main/a/a+b/a+b_1~rc1_amd64.deb');
    assert.equal(archiveUrl('file:///srv/debian', 'dists/trixie/Release'), 'file:///srv/debian/dists/trixie/Release');
    assert.ok(isArchiveUrl('http://127.0.0.1:3142'));
    for (const bad of ['http://', 'ftp://m.example/debian', 'mirror.example/debian', 'http://exa mple/debian']) assert.ok(!isArchiveUrl(bad), bad);
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
