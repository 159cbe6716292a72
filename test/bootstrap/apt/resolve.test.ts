import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { UsageError } from '../../../errors.js';
import { parseParagraphs } from '../../../bootstrap/apt/deb822.js';
import { installOrder } from '../../../bootstrap/apt/order.js';
import { ResolveError, resolve, type SelectionRule } from '../../../bootstrap/apt/resolve.js';
import { Universe } from '../../../bootstrap/apt/universe.js';

const fixture = (name: string) => readFileSync(new URL(`../../../fixtures/apt/${name}`, import.meta.url), 'utf8');

function universe(withUpdates = false): Universe {
  const u = new Universe('amd64');
  for (const p of parseParagraphs(fixture('Packages.resolver'))) u.add(p, 'trixie');
  if (withUpdates) for (const p of parseParagraphs(fixture('Packages.updates'))) u.add(p, 'trixie-updates');
  return u;
}

const MINBASE: SelectionRule = { priorities: ['required'], essential: true, packages: ['apt'] };
const names = (r: { packages: { name: string }[] }) => r.packages.map((p) => p.name);
const only = (include: string[]) => resolve(universe(), { rule: { packages: include } });

describe('apt/resolve', () => {
  it('selects minbase: Priority required, Essential and apt with their dependencies', () => {
    const r = resolve(universe(), { rule: MINBASE });
    assert.deepEqual(names(r), [
      'adduser', 'apt', 'base-files', 'base-passwd', 'debian-archive-keyring', 'dpkg', 'gcc-14-base', 'gpgv', 'libapt-pkg7.0',
      'libc6', 'libgcc-s1', 'loop-a', 'loop-b', 'mawk', 'passwd', 'sysvinit-utils', 'tar',
    ]);
    assert.equal(r.reasons.get('libapt-pkg7.0'), 'apt -> libapt-pkg7.0 (>= 3.0.3)');
    assert.equal(r.reasons.get('sysvinit-utils'), 'rule');
  });

  it('ignores other architectures and lets the newest version win across suites', () => {
    const u = universe(true);
    assert.equal(u.get('libc6')?.version, '2.41-12+deb13u1');
    assert.equal(u.get('libc6')?.origin, 'trixie-updates');
    assert.equal(u.get('tar')?.version, '1.35+dfsg-3');
    assert.equal(universe().get('libc6')?.arch, 'amd64');
  });

  it('takes the first installable alternative, or one already chosen', () => {
    assert.ok(names(only(['alt-user'])).includes('alt-second'));
    assert.ok(!names(only(['alt-user'])).includes('alt-third'));
    const r = only(['alt-chosen-user', 'mawk']);
    assert.ok(!names(r).includes('alt-third-x'), 'mawk is chosen already, so it satisfies the clause');
  });

  it('skips an alternative that conflicts with or breaks the selection, or is broken by it', () => {
    const a = only(['mawk', 'alt-conflict-user']);
    assert.ok(names(a).includes('peaceful') && !names(a).includes('conflicter'));
    const b = only(['dpkg', 'alt-breaks-user']);
    assert.ok(names(b).includes('peaceful') && !names(b).includes('breaker'));
    const c = only(['breaks-old', 'broken-by-sel-user']);
    assert.ok(names(c).includes('peaceful') && !names(c).includes('old-thing'));
  });

  it('resolves virtual packages: the chosen provider, the only provider, else by priority and name', () => {
    assert.ok(names(only(['only-one-user'])).includes('single-provider'));
    const mta = names(only(['mta-user']));
    assert.ok(mta.includes('exim4-daemon-light') && !mta.includes('postfix'));
    const chosen = names(only(['postfix', 'mta-user']));
    assert.ok(chosen.includes('postfix') && !chosen.includes('exim4-daemon-light'));
    const awk = names(only(['dpkg']));
    assert.ok(awk.includes('mawk') && !awk.includes('gawk'), 'required mawk beats optional gawk');
    assert.ok(names(only(['gawk', 'dpkg'])).includes('gawk') && !names(only(['gawk', 'dpkg'])).includes('mawk'));
  });

  it('honours versioned Provides', () => {
    const r = names(only(['abi-user']));
    assert.ok(r.includes('abi-new') && !r.includes('abi-old') && !r.includes('abi-unversioned'));
  });

  it('honours Multi-Arch qualifiers and arch restrictions', () => {
    assert.ok(names(only(['ma-any-user'])).includes('perl'));
    assert.ok(names(only(['ma-native-user'])).includes('perl'));
    assert.throws(() => only(['ma-bad-any-user']), /ma-bad-any-user -> python3:any: no installable candidate/);
    const r = names(only(['arch-restricted-user']));
    assert.ok(r.includes('peaceful') && !r.includes('only-on-i386'));
  });

  it('names the chain of an unsatisfiable dependency', () => {
    assert.throws(() => only(['broken-top']), (e: Error) => {
      assert.ok(e instanceof ResolveError);
      assert.equal(e.message, 'cannot resolve dependencies: broken-top -> broken-mid (>= 2) -> baz: no installable candidate');
      assert.match((e as ResolveError).hint ?? '', /baz is not in the archive/);
      return true;
    });
    assert.throws(() => only(['too-new-user']), (e: ResolveError) => /too-new-user -> libc6 \(>= 9\)/.test(e.message) && /libc6 2.41-12 does not satisfy/.test(e.hint ?? ''));
  });

  it('refuses a hard conflict and an unknown --include', () => {
    assert.throws(() => only(['hard-a', 'hard-b']), /hard-a conflicts with hard-b/);
    assert.throws(() => resolve(universe(), { rule: MINBASE, include: ['no-such-package'] }), (e: Error) => e instanceof UsageError && /no-such-package/.test(e.message));
  });

  it('applies --include and --exclude', () => {
    const r = resolve(universe(), { rule: MINBASE, include: ['build-essential'], exclude: ['gpgv', 'sysvinit-utils'] });
    const n = names(r);
    assert.ok(n.includes('gpgv-sq'), 'the next alternative replaces the excluded gpgv');
    assert.ok(!n.includes('gpgv') && !n.includes('sysvinit-utils'));
    assert.ok(['build-essential', 'gcc', 'gcc-14', 'make', 'dpkg-dev', 'perl'].every((p) => n.includes(p)));
    assert.equal(r.reasons.get('build-essential'), 'include');
    const dropped = resolve(universe(), { rule: { packages: ['apt'] }, exclude: ['adduser'] });
    assert.deepEqual(dropped.warnings, ['dropped dependency apt -> adduser (excluded)']);
  });

  it('orders the install: essential set first, Pre-Depends before their users, loops broken by name', () => {
    const r = resolve(universe(), { rule: MINBASE });
    const { essential, rest } = installOrder(r.packages, 'amd64');
    const e = essential.map((p) => p.name);
    assert.deepEqual(new Set(e), new Set(['base-files', 'base-passwd', 'dpkg', 'gcc-14-base', 'libc6', 'libgcc-s1', 'loop-a', 'loop-b', 'mawk', 'sysvinit-utils', 'tar']));
    const before = (a: string, b: string) => assert.ok(e.indexOf(a) < e.indexOf(b), `${a} before ${b}: ${e.join(' ')}`);
    before('libc6', 'tar');
    before('tar', 'dpkg');
    before('mawk', 'dpkg');
    before('gcc-14-base', 'libgcc-s1');
    before('loop-a', 'loop-b');
    assert.deepEqual(rest.map((p) => p.name), ['passwd', 'adduser', 'debian-archive-keyring', 'gpgv', 'libapt-pkg7.0', 'apt']);
    // Same input, same order.
    assert.deepEqual(installOrder([...r.packages].reverse(), 'amd64').essential.map((p) => p.name), e);
  });
});
