import assert from 'node:assert/strict';
import { resolve, installOrder, ResolveError } from '../../../bootstrap/rpm/resolve.js';
import { nevra, type RpmPackage } from '../../../bootstrap/rpm/primary.js';
import { parseEvr } from '../../../bootstrap/rpm/vercmp.js';
import type { Dep } from '../../../bootstrap/rpm/deps.js';

/** `dep('foo >= 1.0')`, `dep('/bin/sh', true)` for a Requires(pre). */
function dep(s: string, pre = false): Dep {
  const m = /^(\S+) (<=|>=|=|<|>) (\S+)$/.exec(s);
  const ops = { '<': 'LT', '<=': 'LE', '=': 'EQ', '>=': 'GE', '>': 'GT' } as const;
  const d: Dep = s.startsWith('(') ? { name: s } : m ? { name: m[1]!, op: ops[m[2] as '<'], evr: parseEvr(m[3]!) } : { name: s };
  if (pre) d.pre = true;
  return d;
}

/** A package in a line: `pkg('bash-5.2-1.x86_64', { requires: ['glibc'] })`. */
function pkg(nvra: string, f: { provides?: string[]; requires?: (string | [string, 'pre'])[]; conflicts?: string[]; obsoletes?: string[]; recommends?: string[]; files?: string[] } = {}): RpmPackage {
  const m = /^(.+)-([^-]+)-([^-]+)\.([^.]+)$/.exec(nvra)!;
  const [, name, ver, rel, arch] = m as unknown as string[];
  const e = parseEvr(`${ver}-${rel}`) as RpmPackage['evr'];
  return {
    name: name!, arch: arch!, evr: e, checksum: { algo: 'sha256', hex: '0'.repeat(64) }, location: `${nvra}.rpm`, size: 1, installedSize: 1,
    provides: [{ name: name!, op: 'EQ', evr: e }, ...(f.provides ?? []).map((s) => dep(s))],
    requires: (f.requires ?? []).map((r) => (Array.isArray(r) ? dep(r[0], true) : dep(r))),
    conflicts: (f.conflicts ?? []).map((s) => dep(s)), obsoletes: (f.obsoletes ?? []).map((s) => dep(s)),
    recommends: (f.recommends ?? []).map((s) => dep(s)), suggests: [], supplements: [], enhances: [], files: f.files ?? [],
  };
}

const names = (ps: RpmPackage[]) => ps.map(nevra).sort();

describe('rpm resolver', () => {
  it('follows requires, file provides and picks the newest version across repositories', () => {
    const pool = [
      pkg('glibc-2.38-1.x86_64'), pkg('glibc-2.38-7.x86_64'), pkg('glibc-2.38-7.i686'),
      pkg('bash-5.2-1.x86_64', { requires: ['glibc >= 2.38'], files: ['/usr/bin/bash'], provides: ['/bin/sh'] }),
      pkg('coreutils-9.4-1.x86_64', { requires: [['/bin/sh', 'pre'], '/usr/bin/bash'] }),
    ];
    const r = resolve({ pool, install: ['coreutils'], arch: 'x86_64' });
    assert.deepEqual(names(r.packages), ['bash-5.2-1.x86_64', 'coreutils-9.4-1.x86_64', 'glibc-2.38-7.x86_64']);
  });

  it('honours versioned requires by taking an older version when the newest does not fit', () => {
    const pool = [pkg('lib-2.0-1.x86_64'), pkg('lib-1.5-1.x86_64'), pkg('app-1-1.x86_64', { requires: ['lib < 2'] })];
    assert.deepEqual(names(resolve({ pool, install: ['app'], arch: 'x86_64' }).packages), ['app-1-1.x86_64', 'lib-1.5-1.x86_64']);
  });

  it('takes i686 only when nothing native provides the dependency', () => {
    const pool = [pkg('app-1-1.x86_64', { requires: ['oldlib'] }), pkg('oldlib-1-1.i686')];
    assert.deepEqual(names(resolve({ pool, install: ['app'], arch: 'x86_64' }).packages), ['app-1-1.x86_64', 'oldlib-1-1.i686']);
  });

  it('evaluates rich dependencies: or, if/else, unless, with, without', () => {
    const pool = [
      pkg('a-1-1.noarch', { requires: ['(zeta or beta)', '(cond-yes if beta else cond-no)', '(never unless beta)', '(lib with lib-feature)', '(k without k-debug)'] }),
      pkg('beta-1-1.noarch'), pkg('zeta-1-1.noarch'), pkg('cond-yes-1-1.noarch'), pkg('cond-no-1-1.noarch'), pkg('never-1-1.noarch'),
      pkg('lib-2-1.noarch'), pkg('lib-1-1.noarch', { provides: ['lib-feature'] }),
      pkg('k-debug-1-1.noarch', { provides: ['k'] }), pkg('k-1-1.noarch'),
    ];
    const r = resolve({ pool, install: ['a'], arch: 'x86_64' });
    assert.deepEqual(names(r.packages), ['a-1-1.noarch', 'beta-1-1.noarch', 'cond-yes-1-1.noarch', 'k-1-1.noarch', 'lib-1-1.noarch']);
  });

  it('applies a conditional once its condition is installed by a later package', () => {
    const pool = [
      pkg('a-1-1.noarch', { requires: ['(plugin if host)', 'b'] }),
      pkg('b-1-1.noarch', { requires: ['host'] }), pkg('host-1-1.noarch'), pkg('plugin-1-1.noarch'),
    ];
    assert.deepEqual(names(resolve({ pool, install: ['a'], arch: 'x86_64' }).packages), ['a-1-1.noarch', 'b-1-1.noarch', 'host-1-1.noarch', 'plugin-1-1.noarch']);
  });

  it('skips a provider that conflicts with the chosen set, and prefers an obsoleting provider', () => {
    const pool = [
      pkg('app-1-1.noarch', { requires: ['mta', 'tool'], conflicts: ['aaa-mta'] }),
      pkg('aaa-mta-1-1.noarch', { provides: ['mta'] }), pkg('bbb-mta-1-1.noarch', { provides: ['mta'] }),
      pkg('tool-1-1.noarch'), pkg('tool-ng-2-1.noarch', { provides: ['tool = 2'], obsoletes: ['tool < 2'] }),
    ];
    const r = resolve({ pool, install: ['app'], arch: 'x86_64' });
    // as dnf does with the test repository's oldtool/newtool
    assert.deepEqual(names(r.packages), ['app-1-1.noarch', 'bbb-mta-1-1.noarch', 'tool-ng-2-1.noarch']);
    const r2 = resolve({ pool, install: ['tool'], arch: 'x86_64' });
    assert.deepEqual(names(r2.packages), ['tool-ng-2-1.noarch'], 'a request for an obsoleted name installs its obsoleter');
  });

  it('follows Recommends only when asked', () => {
    const pool = [pkg('a-1-1.noarch', { recommends: ['b', 'missing'] }), pkg('b-1-1.noarch')];
    assert.deepEqual(names(resolve({ pool, install: ['a'], arch: 'x86_64' }).packages), ['a-1-1.noarch']);
    assert.deepEqual(names(resolve({ pool, install: ['a'], arch: 'x86_64', withRecommends: true }).packages), ['a-1-1.noarch', 'b-1-1.noarch']);
  });

  it('honours excludes and names the chain when a dependency is missing', () => {
    const pool = [pkg('top-1-1.noarch', { requires: ['mid'] }), pkg('mid-1-1.noarch', { requires: ['libgone.so.1()(64bit)'] })];
    assert.throws(() => resolve({ pool, install: ['top'], arch: 'x86_64' }), (e: unknown) => {
      assert.ok(e instanceof ResolveError);
      assert.match(e.message, /libgone\.so\.1\(\)\(64bit\).*mid-1-1\.noarch ← top-1-1\.noarch ← requested/);
      return true;
    });
    assert.throws(() => resolve({ pool, install: ['top'], arch: 'x86_64', exclude: ['m*'] }), /nothing provides `mid`/);
    assert.throws(() => resolve({ pool, install: ['nope'], arch: 'x86_64' }), /cannot find package `nope`/);
  });

  it('marks install-only packages', () => {
    const pool = [pkg('kernel-6.8-1.x86_64', { requires: ['kernel-core'] }), pkg('kernel-core-6.8-1.x86_64', { provides: ['installonlypkg(kernel)'] })];
    const r = resolve({ pool, install: ['kernel'], arch: 'x86_64' });
    assert.deepEqual(names([...r.installonly]), names(r.packages));
  });

  it('orders prerequisites first and breaks loops at plain requires', () => {
    const pool = [
      pkg('filesystem-3-1.x86_64', { requires: [['setup', 'pre']] }), pkg('setup-2-1.noarch', { requires: ['system-release'] }),
      pkg('fedora-release-40-1.noarch', { provides: ['system-release'], requires: ['filesystem'] }),
      pkg('bash-5-1.x86_64', { requires: ['filesystem'] }),
    ];
    const order = installOrder(pool).map((p) => p.name);
    assert.ok(order.indexOf('setup') < order.indexOf('filesystem'), order.join(' '));
    assert.ok(order.indexOf('filesystem') < order.indexOf('bash'), order.join(' '));
  });
});
