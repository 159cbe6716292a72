/**
 * The Debian engine end to end through the built CLI, against the mirror of
 * the host's apt configuration (network parts skip when there is none or it
 * is unreachable). Package files go to the shared cache, so a warm run of
 * this file builds each tree in well under a minute.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, nsbox, nsboxAsync, NSBOX } from '../../helpers/cli.js';
import { startMirrorProxy } from '../../helpers/mirror-proxy.js';
import { Cache } from '../../../bootstrap/cache.js';
import { HttpClient } from '../../../bootstrap/http.js';
import { MARKER, RECORD, inspectTree } from '../../../bootstrap/tree-state.js';
import { hostnameFor, preDependsBatches } from '../../../bootstrap/apt/engine.js';
import { toPackage, type PackageInfo } from '../../../bootstrap/apt/universe.js';
import { hostMirrors } from '../../../recipes/debian.js';

const mirror = hostMirrors().mirror;

const made: string[] = [];
/** A scratch directory, removed with what is left in it after the last test. */
function tmp(prefix = 'nsbox-engine-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  execFileSync('chmod', ['755', d]);
  made.push(d);
  return d;
}
after(() => {
  for (const d of made) try { rmSync(d, { recursive: true, force: true }); } catch { /* a mount left busy: the tmp cleaner's */ }
});

/** JSON events printed by `--json`. */
function events(stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

function inTree(dir: string, ...command: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = nsbox(['run', '-D', dir, '-q', ...command], { timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** debootstrap's minbase package names (its --print-debs), or undefined without debootstrap. */
function debootstrapMinbase(suite: string): string[] | undefined {
  if (!existsSync('/usr/sbin/debootstrap')) return undefined;
  const dir = tmp('nsbox-debootstrap-');
  try {
    const out = execFileSync('/usr/sbin/debootstrap', ['--variant=minbase', '--print-debs', suite, join(dir, 't'), mirror!], { stdio: ['ignore', 'pipe', 'ignore'] });
    return out.toString().split(/\s+/).filter((w) => w && !/^[IWE]:$/.test(w) && /^[a-z0-9][a-z0-9.+-]+$/.test(w)).sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pkg = (name: string, fields: Record<string, string> = {}): PackageInfo =>
  toPackage({ Package: name, Version: '1', Architecture: 'amd64', Filename: `pool/${name}.deb`, Size: '1', SHA256: 'x', ...fields }, 'test')!;

describe('bootstrap/apt/engine', function () {
  this.timeout(600_000);

  describe('pure parts', () => {
    it('puts a package in a later dpkg call than what it Pre-Depends on, and never before what it Depends on', () => {
      const a = pkg('a');
      const b = pkg('b', { 'Pre-Depends': 'a' });
      const c = pkg('c', { Depends: 'b', 'Pre-Depends': 'libc6 (>= 2)' });
      const d = pkg('d', { 'Pre-Depends': 'b | x' });
      const batches = preDependsBatches([a, b, c, d], 'amd64').map((bt) => bt.map((p) => p.name));
      // c only Depends on b: the same call as b is enough (dpkg orders within a call)
      assert.deepEqual(batches, [['a'], ['b', 'c'], ['d']]);
    });

    it('names a tree after its directory', () => {
      assert.equal(hostnameFor('/srv/Web_Server.1'), 'web-server-1');
      assert.equal(hostnameFor('/srv/___'), 'debian');
    });
  });

  describe('command line', () => {
    it('documents every flag in --help', () => {
      const r = nsbox(['bootstrap', '--help']);
      assert.equal(r.status, 0);
      for (const flag of ['--release', '--variant', '--arch', '--mirror', '--components', '--include', '--exclude', '--keyring', '--no-verify', '--no-updates', '--ignore-valid-until', '--cache-dir', '--force', '--yes', '--quiet', '--json', '--debug']) {
        assert.ok(r.stdout.includes(flag), `${flag} missing from --help`);
      }
    });

    it('refuses an unknown release or variant with the known ones, writing nothing', () => {
      const dir = join(tmp(), 't');
      let r = nsbox(['bootstrap', 'debian', dir, '--release', 'potato']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /unknown Debian release `potato`.*bookworm, trixie/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      r = nsbox(['bootstrap', 'debian', dir, '--variant', 'tiny']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /unknown variant `tiny`.*minbase, important, boot, buildd/);
      assert.equal(existsSync(dir), false);
    });

    it('refuses a directory it did not create', () => {
      const dir = tmp();
      writeFileSync(join(dir, 'precious'), 'x');
      const r = nsbox(['bootstrap', 'debian', dir, '--mirror', 'http://127.0.0.1:9/debian']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /not created by nsbox.*--force/);
      assert.equal(readFileSync(join(dir, 'precious'), 'utf8'), 'x');
    });

    it('names the URL and the error when the mirror is unreachable, leaving nothing behind', () => {
      const dir = join(tmp(), 't');
      const r = nsbox(['bootstrap', 'debian', dir, '--mirror', 'http://127.0.0.1:9/debian', '--no-updates', '--quiet'], { timeout: 120_000 });
      assert.equal(r.status, 4);
      assert.match(r.stderr, /cannot download `http:\/\/127\.0\.0\.1:9\/debian\/dists\/trixie\/InRelease`: .*ECONNREFUSED/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(existsSync(dir), false);
    });
  });

  describe('against the host mirror', () => {
    before(async function () {
      if (!mirror) this.skip();
      const http = new HttpClient({ tries: 1 });
      try {
        await http.get(`${mirror}/dists/trixie/InRelease`, { maxBytes: 1 << 20 });
      } catch {
        this.skip();
      } finally {
        await http.close();
      }
      execFileSync('npm', ['run', '-s', 'build'], { stdio: 'ignore' });
    });

    it('refuses an unknown --include package by name, before writing anything', () => {
      const dir = join(tmp(), 't');
      const r = nsbox(['bootstrap', 'debian', dir, '--release', 'bookworm', '--include', 'no-such-package-nsbox', '--quiet'], { timeout: 300_000 });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /cannot find package `no-such-package-nsbox`/);
      assert.equal(existsSync(dir), false);
    });

    it('refuses a tampered InRelease from a file:// mirror copy, and does not mark the tree complete', async () => {
      const root = tmp();
      const url = `${mirror}/dists/bookworm/InRelease`;
      const http = new HttpClient();
      const { data } = await new Cache().fetchIndex(http, url);
      await http.close();
      const text = data.toString('utf8').replace('Origin: Debian', 'Origin: Debiam');
      assert.notEqual(text, data.toString('utf8'));
      mkdirSync(join(root, 'debian/dists/bookworm'), { recursive: true });
      writeFileSync(join(root, 'debian/dists/bookworm/InRelease'), text);
      const dir = join(root, 't');
      const r = nsbox(['bootstrap', 'debian', dir, '--release', 'bookworm', '--mirror', `file://${root}/debian`, '--no-updates', '--quiet']);
      assert.equal(r.status, 5, r.stderr);
      assert.match(r.stderr, /cannot verify .*InRelease/);
      assert.notEqual((await inspectTree(dir)).kind, 'complete');
    });

    for (const suite of ['bookworm', 'trixie']) {
      it(`builds ${suite} minbase: debootstrap's package set, dpkg --audit and apt-get check clean`, async () => {
        const dir = join(tmp(), suite);
        const r = nsbox(['bootstrap', 'debian', dir, '--release', suite, '--json'], { timeout: 600_000 });
        assert.equal(r.status, 0, r.stderr);
        const result = events(r.stdout).find((e) => e.type === 'result') as { packages: Record<string, string> };
        assert.ok(result, 'no result event');
        const installed = inTree(dir, 'dpkg-query', '-W', '-f', '${Package}\\n');
        assert.equal(installed.status, 0);
        const names = installed.stdout.split('\n').filter(Boolean).sort();
        assert.deepEqual(names, Object.keys(result.packages).sort());
        const theirs = debootstrapMinbase(suite);
        if (theirs) assert.deepEqual(names, theirs);
        const audit = inTree(dir, 'dpkg', '--audit');
        assert.equal(audit.status, 0);
        assert.equal(audit.stdout.trim(), '');
        assert.equal(inTree(dir, 'apt-get', 'check').status, 0);
        // What the build leaves behind: complete, sources, empty machine-id, nothing temporary.
        assert.equal((await inspectTree(dir)).kind, 'complete');
        assert.equal(existsSync(join(dir, MARKER)), false);
        assert.match(readFileSync(join(dir, 'etc/apt/sources.list.d/debian.sources'), 'utf8'), new RegExp(`Suites: ${suite} ${suite}-updates\\n`));
        assert.equal(readFileSync(join(dir, 'etc/machine-id'), 'utf8'), '');
        assert.equal(existsSync(join(dir, 'usr/sbin/policy-rc.d')), false);
        assert.equal(readFileSync(join(dir, 'var/lib/dpkg/diversions'), 'utf8').includes('nsbox'), false);
        assert.deepEqual(execFileSync('ls', [join(dir, 'var/lib/nsbox')]).toString().trim(), 'bootstrap.json');
        assert.equal(inTree(dir, 'sh', '-c', 'test -x "$(command -v start-stop-daemon)" && ! grep -q nsbox "$(command -v start-stop-daemon)"').status, 0);
        if (suite === 'trixie') {
          const hello = inTree(dir, 'sh', '-c', 'apt-get update -qq && apt-get install -y -qq hello >/dev/null && hello');
          assert.equal(hello.status, 0, hello.stderr);
          assert.match(hello.stdout, /Hello, world!/);
        }
        rmSync(dir, { recursive: true, force: true });
      });
    }

    it('downloads no package file on a rerun with a warm cache', () => {
      const dir = join(tmp(), 'warm');
      const r = nsbox(['bootstrap', 'debian', dir, '--release', 'bookworm', '--json'], { timeout: 600_000 });
      assert.equal(r.status, 0, r.stderr);
      const result = events(r.stdout).find((e) => e.type === 'result') as { downloadedBytes: number; downloadedFiles: number; cachedFiles: number };
      assert.equal(result.downloadedFiles, 0);
      assert.equal(result.downloadedBytes, 0);
      assert.ok(result.cachedFiles > 50);
      // The essential stage of an identical earlier build is reused, not installed again.
      assert.ok(events(r.stdout).some((e) => e.type === 'phase' && e.phase === 'unpack' && /restored from the cache/.test(String(e.detail))));
      assert.equal(inTree(dir, 'dpkg', '--audit').stdout.trim(), '');
      assert.equal(inTree(dir, 'apt-get', 'check').status, 0);
      rmSync(dir, { recursive: true, force: true });
    });

    it('bootstraps through a mirror URL with no path (a local proxy), taking the security archive from the host\'s apt sources', async function () {
      const security = hostMirrors().security;
      if (!security) this.skip();
      const proxy = await startMirrorProxy({ '/': mirror! });
      try {
        const dir = join(tmp(), 'proxied');
        // (asynchronously: the proxy runs in this process)
        const r = await collect(nsboxAsync(['bootstrap', 'debian', dir, '--release', 'trixie', '--mirror', proxy.url, '--quiet']));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        assert.ok(proxy.requests.includes('/dists/trixie/InRelease'), proxy.requests.slice(0, 5).join(' '));
        assert.ok(!proxy.requests.some((p) => p.includes('trixie-security')), 'the security suite does not come from the proxy');
        const sources = readFileSync(join(dir, 'etc/apt/sources.list.d/debian.sources'), 'utf8');
        assert.match(sources, new RegExp(`URIs: ${proxy.url}\\nSuites: trixie trixie-updates\\n`));
        assert.match(sources, new RegExp(`URIs: ${security!.replace(/[.]/g, '\\.')}\\nSuites: trixie-security\\n`));
        assert.equal(inTree(dir, 'dpkg', '--audit').stdout.trim(), '');
        rmSync(dir, { recursive: true, force: true });
      } finally {
        await proxy.close();
      }
    });

    it('leaves the security suite out with one warning when neither the mirror nor the host has a security archive for it', async () => {
      // A mirror of the main archive only (its debian-security sibling answers 404), and a host
      // without apt sources (a private mount namespace hides /etc/apt).
      const proxy = await startMirrorProxy({ '/debian/': mirror!, '/debian-security/': null });
      try {
        const dir = join(tmp(), 'nosecurity');
        const r = await collect(spawn('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs tmpfs /etc/apt && exec "$@"', 'sh',
          process.execPath, NSBOX, 'bootstrap', 'debian', dir, '--release', 'trixie', '--mirror', `${proxy.url}/debian`], { stdio: ['ignore', 'pipe', 'pipe'] }));
        assert.equal(r.code, 0, r.stderr);
        const lines = (r.stdout + r.stderr).split('\n').filter((l) => /warn/i.test(l));
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /leaving out trixie-security: no security archive serves it \(http:\/\/127\.0\.0\.1:\d+\/debian-security: HTTP 404\)/);
        const sources = readFileSync(join(dir, 'etc/apt/sources.list.d/debian.sources'), 'utf8');
        assert.doesNotMatch(sources, /security/);
        assert.equal((await inspectTree(dir)).kind, 'complete');
        rmSync(dir, { recursive: true, force: true });
      } finally {
        await proxy.close();
      }
    });

    it('stops with one line when the disk is full, leaving the tree marked incomplete', async () => {
      const mnt = tmp();
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', mnt]);
      try {
        const dir = join(mnt, 't');
        const r = nsbox(['bootstrap', 'debian', dir, '--release', 'bookworm', '--quiet'], { timeout: 300_000 });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /^nsbox: cannot bootstrap into `.*`: no space left on device .*left marked incomplete/);
        assert.equal(r.stderr.trim().split('\n').length, 1);
        assert.equal((await inspectTree(dir)).kind, 'incomplete');
      } finally {
        execFileSync('umount', [mnt]);
      }
    });

    for (const when of ['download', 'configure'] as const) {
      it(`recovers from SIGINT during ${when}: marked incomplete with a clear message, then a rerun completes`, async () => {
        const root = tmp();
        const dir = join(root, 't');
        // Mid-download needs a cold cache of its own; mid-configure uses the shared warm one.
        const args = ['bootstrap', 'debian', dir, '--release', 'bookworm', '--json', ...(when === 'download' ? ['--cache-dir', join(root, 'cache')] : [])];
        const child = nsboxAsync(args);
        let sent = false;
        child.stdout!.on('data', (d: Buffer) => {
          if (sent) return;
          for (const line of d.toString().split('\n')) {
            if (!line.startsWith('{')) continue;
            const e = JSON.parse(line) as { type: string; phase?: string; items?: number; totalItems?: number; done?: number };
            const now = when === 'download' ? e.type === 'download' && (e.items ?? 0) > 2 && e.items! < e.totalItems! : e.type === 'count' && e.phase === 'configure' && (e.done ?? 0) > 10;
            if (now) {
              sent = true;
              child.kill('SIGINT');
              break;
            }
          }
        });
        const first = await collect(child);
        assert.ok(sent, `never reached ${when}`);
        assert.equal(first.code, 130, first.stderr);
        assert.match(first.stderr, /interrupted: `.*` is left marked incomplete; rerun the same command/);
        assert.equal((await inspectTree(dir)).kind, 'incomplete');
        const again = nsbox(args, { timeout: 600_000 });
        assert.equal(again.status, 0, again.stderr);
        assert.equal((await inspectTree(dir)).kind, 'complete');
        assert.ok(existsSync(join(dir, RECORD)));
        const audit = inTree(dir, 'dpkg', '--audit');
        assert.equal(audit.status, 0);
        assert.equal(audit.stdout.trim(), '');
        assert.equal(inTree(dir, 'dpkg-query', '-W').stdout.trim().split('\n').length, Object.keys((events(again.stdout).find((e) => e.type === 'result') as { packages: object }).packages).length);
        if (when === 'download') {
          // The rerun stored the essential stage in this private cache; a damaged copy is dropped, not trusted.
          const stages = join(root, 'cache/stages');
          const archive = readdirSync(stages).find((n) => n.endsWith('.tar.zst'))!;
          const bytes = readFileSync(join(stages, archive));
          writeFileSync(join(stages, archive), bytes.subarray(0, bytes.length >> 1));
          const third = nsbox(['bootstrap', 'debian', join(root, 't3'), '--release', 'bookworm', '--json', '--cache-dir', join(root, 'cache')], { timeout: 600_000 });
          assert.equal(third.status, 0, third.stderr);
          assert.ok(events(third.stdout).some((e) => e.type === 'log' && /cached essential stage is unusable/.test(String(e.message))));
          assert.equal(inTree(join(root, 't3'), 'dpkg', '--audit').stdout.trim(), '');
        }
        rmSync(root, { recursive: true, force: true });
      });
    }
  });
});
