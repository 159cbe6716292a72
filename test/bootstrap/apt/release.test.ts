import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerifyError } from '../../../errors.js';
import { loadKeyringFiles, type Keyring } from '../../../bootstrap/pgp.js';
import { readPackagesIndex } from '../../../bootstrap/apt/packages-index.js';
import { checkDigest, trustRelease } from '../../../bootstrap/apt/inrelease.js';
import { checkFreshness, chooseIndex, packagesIndexes, parseRelease, stripClearsign } from '../../../bootstrap/apt/release.js';
import { Universe } from '../../../bootstrap/apt/universe.js';
import { loadSuite } from '../../../bootstrap/apt/repository.js';
import { Cache } from '../../../bootstrap/cache.js';
import { HttpClient } from '../../../bootstrap/http.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const path = (p: string) => new URL(`../../../${p}`, import.meta.url).pathname;
const IN_RELEASE = readFileSync(path('fixtures/apt/trixie-updates.InRelease'), 'utf8');
const PACKAGES_XZ = readFileSync(path('fixtures/apt/trixie-updates-main-amd64-Packages.xz'));
/** Inside the fixture's validity window (Date 2026-11-28, Valid-Until 2026-12-05). */
const NOW = new Date('2026-11-29T12:00:00Z');

/** Flips one byte of a string at a line matching `near`. */
function flip(text: string, near: string): string {
  const i = text.indexOf(near) + near.length - 1;
  return text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1);
}

describe('apt/release', () => {
  let ring: Keyring;
  before(async () => {
    ring = await loadKeyringFiles([path('recipes/keys/debian-archive-keyring.pgp')]);
  });

  it('parses a real Release: suite, dates, architectures, components, by-hash, SHA256 list', () => {
    const rel = parseRelease(stripClearsign(IN_RELEASE));
    assert.equal(rel.suite, 'stable-updates');
    assert.equal(rel.codename, 'trixie-updates');
    assert.equal(rel.validUntil?.toISOString(), '2026-12-05T02:15:35.000Z');
    assert.ok(rel.architectures.includes('amd64') && rel.components.includes('main'));
    assert.ok(rel.acquireByHash && rel.archAllInArchIndexes);
    assert.deepEqual(rel.files.get('main/binary-amd64/Packages.xz'), { sha256: 'eea860c5dea11680e64299adb2736c2367c4235763a66f2b70ca61ce1b51978a', size: 1108 });
  });

  it('chooses Packages.xz and its by-hash path', () => {
    const rel = parseRelease(stripClearsign(IN_RELEASE));
    const c = chooseIndex(rel, 'main', 'amd64')!;
    assert.equal(c.path, 'main/binary-amd64/Packages.xz');
    assert.equal(c.fetchPath, `main/binary-amd64/by-hash/SHA256/${c.sha256}`);
    assert.equal(c.compression, 'xz');
    assert.equal(c.uncompressed?.size, 2351);
    assert.equal(chooseIndex({ ...rel, acquireByHash: false }, 'main', 'amd64')?.fetchPath, 'main/binary-amd64/Packages.xz');
    assert.throws(() => packagesIndexes(rel, 'trixie-updates', ['main', 'nonfree'], 'amd64'), /nonfree\/binary-amd64\/Packages/);
    assert.throws(() => packagesIndexes(rel, 'trixie-updates', ['main'], 'vax'), /carries/);
  });

  it('verifies a real InRelease with the bundled Debian keys and parses only the signed text', async () => {
    const t = await trustRelease({ inRelease: IN_RELEASE }, { suite: 'trixie-updates', keyring: ring, now: NOW });
    assert.equal(t.release.codename, 'trixie-updates');
    assert.ok(t.signers.some((s) => /13\/trixie/.test(s.userId ?? '')), JSON.stringify(t.signers));
    assert.equal(t.text, stripClearsign(IN_RELEASE));
    // The alias works too.
    await trustRelease({ inRelease: IN_RELEASE }, { suite: 'stable-updates', keyring: ring, now: NOW });
  });

  it('rejects a tampered InRelease', async () => {
    const tampered = flip(IN_RELEASE, 'main/binary-amd64/Packages.xz\n');
    await assert.rejects(trustRelease({ inRelease: flip(IN_RELEASE, 'eea860c5') }, { suite: 'trixie-updates', keyring: ring, now: NOW }), VerifyError);
    await assert.rejects(trustRelease({ inRelease: tampered }, { suite: 'trixie-updates', keyring: ring, now: NOW }), VerifyError);
  });

  it('rejects another suite, an expired Valid-Until and a Date in the future', async () => {
    await assert.rejects(trustRelease({ inRelease: IN_RELEASE }, { suite: 'bookworm-updates', keyring: ring, now: NOW }), /describes `trixie-updates`/);
    await assert.rejects(trustRelease({ inRelease: IN_RELEASE }, { suite: 'trixie-updates', keyring: ring, now: new Date('2026-12-06T00:00:00Z') }), /expired on 2026-12-05/);
    await trustRelease({ inRelease: IN_RELEASE }, { suite: 'trixie-updates', keyring: ring, now: new Date('2026-12-06T00:00:00Z'), ignoreValidUntil: true });
    const rel = parseRelease(stripClearsign(IN_RELEASE));
    assert.throws(() => checkFreshness(rel, 'trixie-updates', { now: new Date('2026-11-01T00:00:00Z') }), /in the future/);
  });

  it('reads a real Packages.xz into the universe after checking its SHA256', async () => {
    const rel = parseRelease(stripClearsign(IN_RELEASE));
    const u = new Universe('amd64');
    const n = await readPackagesIndex(PACKAGES_XZ, chooseIndex(rel, 'main', 'amd64')!, u, 'trixie-updates');
    assert.equal(n, 3);
    assert.equal(u.size, 3);
    assert.ok([...u.all()].every((p) => p.origin === 'trixie-updates' && p.filename.startsWith('pool/')));
    checkDigest(PACKAGES_XZ, rel.files.get('main/binary-amd64/Packages.xz')!, 'Packages.xz');
  });

  it('saves the decompressed index and confirms it against the uncompressed entry of Release', async () => {
    const rel = parseRelease(stripClearsign(IN_RELEASE));
    const dir = mkdtempSync(join(tmpdir(), 'nsbox-apt-'));
    try {
      let ok: boolean | undefined;
      const choice = chooseIndex(rel, 'main', 'amd64')!;
      await readPackagesIndex(PACKAGES_XZ, choice, new Universe('amd64'), 'x', 'x', { savePlainTo: join(dir, 'P'), onPlainSaved: (m) => (ok = m) });
      assert.equal(ok, true);
      const plain = readFileSync(join(dir, 'P'));
      checkDigest(plain, choice.uncompressed!, 'Packages');
      const u = new Universe('amd64');
      await readPackagesIndex(plain, { ...choice, ...choice.uncompressed!, compression: 'none' }, u, 'x');
      assert.equal(u.size, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a tampered Packages.xz and adds nothing from it', async () => {
    const rel = parseRelease(stripClearsign(IN_RELEASE));
    const bad = Buffer.from(PACKAGES_XZ);
    bad[600] ^= 1;
    assert.throws(() => checkDigest(bad, rel.files.get('main/binary-amd64/Packages.xz')!, 'Packages.xz'), /SHA256/);
    const u = new Universe('amd64');
    await assert.rejects(readPackagesIndex(bad, chooseIndex(rel, 'main', 'amd64')!, u, 'x'), VerifyError);
    assert.equal(u.size, 0);
  });

  describe('loadSuite over HTTP', () => {
    /** Serves the fixture suite; `packages` answers the requests for its Packages.xz (by-hash path). */
    const serve = async (packages: (req: IncomingMessage, res: ServerResponse, n: number) => void) => {
      let n = 0;
      const server = createServer((req, res) => {
        if (req.url === '/debian/dists/trixie-updates/InRelease') return void res.end(IN_RELEASE);
        if (req.url?.includes('/binary-amd64/by-hash/SHA256/')) return packages(req, res, ++n);
        res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`, close: () => new Promise((r) => server.close(r)), count: () => n };
    };
    const load = async (base: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'nsbox-suite-'));
      const http = new HttpClient({ retryDelayMs: 10 });
      try {
        const u = new Universe('amd64');
        const loaded = await loadSuite(http, new Cache({ dir }), { base, suite: 'trixie-updates', components: ['main'], keyring: ring, now: NOW }, u);
        return { loaded, u };
      } finally {
        await http.close();
        rmSync(dir, { recursive: true, force: true });
      }
    };

    it('reads Packages while it downloads', async () => {
      const srv = await serve((_req, res) => res.end(PACKAGES_XZ));
      try {
        const { loaded, u } = await load(srv.base);
        assert.equal(loaded.packages, 3);
        assert.equal(loaded.downloaded, 1);
        assert.equal(u.size, 3);
      } finally {
        await srv.close();
      }
    });

    it('reads it again from the cache when the server restarts a broken transfer from byte 0', async () => {
      const srv = await serve((_req, res, n) => {
        if (n === 1) {
          // half the file, then the connection drops
          res.writeHead(200, { 'content-length': PACKAGES_XZ.length });
          res.write(PACKAGES_XZ.subarray(0, 500), () => res.destroy());
          return;
        }
        res.end(PACKAGES_XZ); // the retry asks for a Range; this server sends everything again
      });
      try {
        const { loaded, u } = await load(srv.base);
        assert.equal(srv.count(), 2);
        assert.equal(loaded.packages, 3);
        assert.equal(u.size, 3);
      } finally {
        await srv.close();
      }
    });

    it('adds nothing from a Packages that does not match Release', async () => {
      const bad = Buffer.from(PACKAGES_XZ);
      bad[600] ^= 1;
      const srv = await serve((_req, res) => res.end(bad));
      try {
        await assert.rejects(load(srv.base), (e: unknown) => e instanceof VerifyError && /SHA256/.test(e.message));
      } finally {
        await srv.close();
      }
    });
  });
});
