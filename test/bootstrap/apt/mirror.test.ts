/**
 * Against the real mirror of the host's apt configuration (skipped when the
 * host has none or it is unreachable): the minbase set of bookworm and
 * trixie equals debootstrap's. Downloads go to the shared cache.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cache } from '../../../bootstrap/cache.js';
import { HttpClient } from '../../../bootstrap/http.js';
import { loadKeyringFiles, type Keyring } from '../../../bootstrap/pgp.js';
import { installOrder } from '../../../bootstrap/apt/order.js';
import { loadSuite } from '../../../bootstrap/apt/repository.js';
import { resolve } from '../../../bootstrap/apt/resolve.js';
import { Universe } from '../../../bootstrap/apt/universe.js';
import { DEBIAN_KEYRING, findRelease, hostMirrors, selectionFor } from '../../../recipes/debian.js';

const mirror = hostMirrors().mirror;

/** debootstrap's own answer (its --print-debs), or undefined without debootstrap. */
function debootstrapMinbase(suite: string): string[] | undefined {
  if (!existsSync('/usr/sbin/debootstrap')) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-debootstrap-'));
  try {
    const out = execFileSync('/usr/sbin/debootstrap', ['--variant=minbase', '--print-debs', suite, join(dir, 't'), mirror!], { stdio: ['ignore', 'pipe', 'ignore'] });
    return out.toString().split('\n').filter((l) => l && !/^[IWE]: /.test(l)).join(' ').split(/\s+/).filter(Boolean).sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('apt against the host mirror', function () {
  this.timeout(600_000);
  let http: HttpClient;
  let keyring: Keyring;
  before(async function () {
    if (!mirror) this.skip();
    http = new HttpClient({ tries: 2 });
    try {
      await http.get(`${mirror}/dists/trixie/InRelease`, { maxBytes: 1 << 20 });
    } catch {
      this.skip();
    }
    keyring = await loadKeyringFiles([DEBIAN_KEYRING]);
  });
  after(async () => http?.close());

  for (const suite of ['bookworm', 'trixie']) {
    it(`resolves ${suite} minbase to debootstrap's package set`, async () => {
      const u = new Universe('amd64');
      const loaded = await loadSuite(http, new Cache(), { base: mirror!, suite, components: ['main'], keyring }, u);
      assert.ok(loaded.trusted.signers.length > 0);
      assert.ok(loaded.packages > 50_000);
      const r = resolve(u, selectionFor('minbase', findRelease(suite)));
      const ours = r.packages.map((p) => p.name).sort();
      const order = installOrder(r.packages, 'amd64');
      assert.equal(order.essential.length + order.rest.length, ours.length);
      const theirs = debootstrapMinbase(suite);
      if (theirs) assert.deepEqual(ours, theirs);
    });
  }

  it('reads the decompressed copy it keeps, and the compressed index again when that copy is damaged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsbox-plain-'));
    try {
      // the shared cache already holds trixie's index (test above); a private one starts cold
      const cache = new Cache({ dir });
      const first = await loadSuite(http, cache, { base: mirror!, suite: 'trixie', components: ['main'], keyring }, new Universe('amd64'));
      const plain = readdirSync(join(dir, 'by-sha256'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
        .sort((a, b) => statSync(b).size - statSync(a).size)[0]!; // the uncompressed Packages is the largest file
      const again = await loadSuite(http, cache, { base: mirror!, suite: 'trixie', components: ['main'], keyring }, new Universe('amd64'));
      assert.equal(again.packages, first.packages);
      assert.equal(again.downloaded, 0);
      const fd = openSync(plain, 'r+');
      writeSync(fd, Buffer.from('Package: evil\n'), 0, 14, 0);
      closeSync(fd);
      const damaged = await loadSuite(http, cache, { base: mirror!, suite: 'trixie', components: ['main'], keyring }, new Universe('amd64'));
      assert.equal(damaged.packages, first.packages);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
