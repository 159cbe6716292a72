/**
 * rpm's runtime (bootstrap/rpm/runtime.ts): the rule on its own, then the
 * runtime a bootstrap leaves in the cache, from two differently built
 * repositories (repo-builder.ts shapes): bash as /bin/sh with a literal
 * `_dbpath`, and busybox as /bin/sh with a `_dbpath` that rpm computes
 * through the shell and a plugin rpm dlopens. The expected runtime is
 * computed here from the tree's own rpm database, apart from the engine's
 * code: every file of every package of rpm's Requires closure but
 * directories, %doc, %lang and %ghost entries.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectTree } from '../../../bootstrap/tree-state.js';
import type { Dep } from '../../../bootstrap/rpm/deps.js';
import type { RpmPackage } from '../../../bootstrap/rpm/primary.js';
import { runtimeKey } from '../../../bootstrap/rpm/runtime-cache.js';
import { isRuntimeFile, rpmClosure } from '../../../bootstrap/rpm/runtime.js';
import { collect, nsboxAsync } from '../../helpers/cli.js';
import { buildFedoraTestRepo, type RepoShape, type TestRepo } from './repo-builder.js';

const haveTools = ['rpmbuild', 'rpmsign', 'createrepo_c', 'gpg', 'gcc'].every((t) => spawnSync('which', [t]).status === 0);
type Result = { code: number | null; stdout: string; stderr: string };

/** A package of a pure unit test: name, what it requires and provides. */
function pkg(name: string, requires: string[] = [], provides: string[] = [], files: string[] = []): RpmPackage {
  const evr = { epoch: 0, version: '1', release: '1' };
  const dep = (n: string): Dep => ({ name: n });
  return {
    name, arch: 'x86_64', evr, checksum: { algo: 'sha256', hex: '0'.repeat(64) }, location: `${name}.rpm`, size: 1, installedSize: 1,
    provides: [{ name, op: 'EQ', evr }, ...provides.map(dep)], requires: requires.map(dep), conflicts: [], obsoletes: [], recommends: [],
    suggests: [], supplements: [], enhances: [], files,
  };
}

describe("bootstrap/rpm/runtime: what rpm's runtime is made of", () => {
  it('takes rpm, setup, filesystem, whatever provides /bin/sh, and the whole closure of their Requires', () => {
    const set = [
      pkg('rpm', ['librpm.so.9()(64bit)', '(bash or busybox)', 'coreutils', 'rpmlib(PayloadIsZstd)']), pkg('librpm', ['libc.so.6()(64bit)'], ['librpm.so.9()(64bit)']),
      pkg('glibc', [], ['libc.so.6()(64bit)']), pkg('bash', ['libtinfo'], [], ['/usr/bin/bash']), pkg('libtinfo'), pkg('coreutils', ['/bin/sh']),
      pkg('dash', [], [], ['/bin/sh']), pkg('setup'), pkg('filesystem', ['setup']), pkg('dnf', ['python3']), pkg('python3'),
    ];
    const names = [...rpmClosure(set)].map((p) => p.name).sort();
    // dash only by providing /bin/sh; every operand of the rich dependency that is in the set; nothing dnf needs
    assert.deepEqual(names, ['bash', 'coreutils', 'dash', 'filesystem', 'glibc', 'librpm', 'libtinfo', 'rpm', 'setup']);
  });

  it('takes every file, symlink and %license of those packages, and leaves directories, %doc and %lang files', () => {
    const f = (mode: number, flags = 0, lang = '') => isRuntimeFile({ mode, flags, lang });
    assert.ok(f(0o100755) && f(0o120777) && f(0o100644, 1 /* %config */) && f(0o100644, 128 /* %license */) && f(0o100644, 0, 'C'));
    assert.ok(!f(0o040755) && !f(0o100644, 2 /* %doc */) && !f(0o100644, 0, 'de') && !f(0o100644, 0, 'pt|pt_BR'));
  });

  it('keys a cached runtime by its exact packages and the rule that chose its files', () => {
    const a = [{ nevra: 'rpm-4.18.0-1.fc40.x86_64', sha256: 'sha256:aa' }];
    assert.equal(runtimeKey('x86_64', a), runtimeKey('x86_64', [...a]));
    assert.notEqual(runtimeKey('x86_64', a), runtimeKey('x86_64', [{ ...a[0]!, sha256: 'sha256:ab' }]));
    assert.notEqual(runtimeKey('x86_64', a), runtimeKey('aarch64', a));
  });
});

/** rpm's own view of the installed set: each package's requires, provides and files. */
interface Installed {
  requires: Map<string, string[]>;
  provides: Map<string, string[]>;
  files: Map<string, { path: string; mode: number; flags: number; lang: string }[]>;
}

/** Package names whose provides or files meet a simple dependency. */
function whatProvides(db: Installed, name: string): string[] {
  const out: string[] = [];
  for (const [p, provs] of db.provides) if (provs.includes(name) || db.files.get(p)!.some((f) => f.path === name)) out.push(p);
  return out;
}

/** The names a dependency (rich or not) mentions, versions and operators left out. */
function depNames(dep: string): string[] {
  if (!dep.startsWith('(')) return [dep];
  // rich: a name never starts with `(`, and keeps only the `)` it opened (`libc.so.6()(64bit)`)
  const unwrap = (t: string) => {
    t = t.replace(/^\(+/, '');
    while (t.endsWith(')') && t.split(')').length > t.split('(').length) t = t.slice(0, -1);
    return t;
  };
  const tokens = dep.split(/\s+/).map(unwrap);
  return tokens.filter((t, i) => t && !['and', 'or', 'if', 'else', 'with', 'without', 'unless'].includes(t)
    && !/^(<=|>=|=|<|>)$/.test(t) && !/^(<=|>=|=|<|>)$/.test(tokens[i - 1] ?? ''));
}

/** rpm's Requires closure computed from the tree's database (rpm, setup, filesystem and /bin/sh's provider). */
function closureOf(db: Installed): Set<string> {
  const out = new Set<string>();
  const queue = ['rpm', 'setup', 'filesystem', ...whatProvides(db, '/bin/sh')];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    if (out.has(p)) continue;
    out.add(p);
    for (const r of db.requires.get(p) ?? []) if (!r.startsWith('rpmlib(')) for (const n of depNames(r)) queue.push(...whatProvides(db, n));
  }
  return out;
}

/** Every path under `dir` that is not a directory, as `/rel`. */
function nonDirectories(dir: string): Set<string> {
  const out = new Set<string>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isDirectory()) out.add(`/${join(e.parentPath, e.name).slice(dir.length + 1)}`);
  }
  return out;
}

describe("rpm's runtime from two differently built repositories", function () {
  this.timeout(900_000);
  let work: string;
  let cache: string;
  const repos = new Map<RepoShape, TestRepo>();
  const trees = new Map<RepoShape, { dir: string; result: Result; db?: Installed; runtime?: string }>();
  /** The shape's bootstrap, which must have succeeded (each test says so itself: one shape failing leaves the other's tests running). */
  const built = (shape: RepoShape) => {
    const t = trees.get(shape)!;
    assert.equal(t.result.code, 0, `the ${shape} bootstrap failed: ${t.result.stderr}`);
    return t as Required<typeof t>;
  };
  /** The runtime the shape's bootstrap put into the cache (even when rpm failed afterwards). */
  const runtimeOf = (shape: RepoShape) => {
    const r = trees.get(shape)!.runtime;
    assert.ok(r, `the ${shape} bootstrap left no runtime in the cache: ${trees.get(shape)!.result.stderr}`);
    return r;
  };

  const inTree = async (dir: string, args: string[]): Promise<Result> => collect(nsboxAsync(['run', '-D', dir, '--', ...args]));
  const readDb = async (dir: string): Promise<Installed> => {
    // one query: R/P/F lines per package (busybox's shell runs its own `rpm` applet: rpm by its path)
    const qf = '[%{=NAME}\\tR\\t%{REQUIRENAME}\\n][%{=NAME}\\tP\\t%{PROVIDENAME}\\n][%{=NAME}\\tF\\t%{FILENAMES}\\t%{FILEMODES}\\t%{FILEFLAGS}\\t%{FILELANGS}\\n]';
    const r = await inTree(dir, ['/usr/bin/rpm', '-qa', '--qf', qf]);
    assert.equal(r.code, 0, r.stderr);
    const db: Installed = { requires: new Map(), provides: new Map(), files: new Map() };
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const [name, kind, value, mode, flags, lang] = line.split('\t') as [string, string, string, string?, string?, string?];
      for (const m of [db.requires, db.provides, db.files] as Map<string, unknown[]>[]) if (!m.has(name)) m.set(name, []);
      if (kind === 'R') db.requires.get(name)!.push(value);
      else if (kind === 'P') db.provides.get(name)!.push(value);
      else db.files.get(name)!.push({ path: value, mode: Number(mode), flags: Number(flags), lang: lang ?? '' });
    }
    return db;
  };

  before(async function () {
    if (!haveTools) this.skip();
    work = mkdtempSync(join(tmpdir(), 'nsbox-rpm-runtime-'));
    cache = join(work, 'cache'); // one cache for both: their runtimes are told apart by key
    for (const shape of ['bash', 'busybox'] as const) {
      const repo = await buildFedoraTestRepo(join(work, `mirror-${shape}`), { release: 40, shape });
      repos.set(shape, repo);
      const dir = join(work, `f40-${shape}`);
      const result = await collect(nsboxAsync(['bootstrap', 'fedora', dir, '--release', '40', '--mirror', repo.baseUrl, '--keyring', repo.keyFile,
        '--cache-dir', cache, '--yes', '--json', ...(shape === 'busybox' ? ['--exclude', 'bash'] : [])]));
      const known = new Set([...trees.values()].map((t) => t.runtime));
      const fresh = readdirSync(join(cache, 'rpm-runtime')).filter((n) => !n.startsWith('.')).map((n) => join(cache, 'rpm-runtime', n)).filter((d) => !known.has(d));
      assert.ok(fresh.length <= 1, `one new runtime in the cache for ${shape}`);
      trees.set(shape, { dir, result, db: result.code === 0 ? await readDb(dir) : undefined, runtime: fresh[0] });
    }
  });
  after(async () => {
    for (const r of repos.values()) await r.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const shape of ['bash', 'busybox'] as const) {
    it(`${shape}: holds every file of every package of rpm's Requires closure but %doc and %lang ones, and nothing else`, () => {
      const { db } = built(shape);
      const runtime = runtimeOf(shape);
      const closure = closureOf(db);
      assert.ok(closure.has(shape) && closure.has('coreutils') && closure.has('glibc') && !closure.has('dnf'), [...closure].join(' '));
      const expected = new Set<string>();
      for (const name of closure) {
        for (const f of db.files.get(name)!) {
          const dir = (f.mode & 0o170000) === 0o040000;
          if (!dir && !(f.flags & (2 /* %doc */ | 64 /* %ghost: not in the payload */)) && !f.lang) expected.add(f.path);
        }
      }
      assert.deepEqual([...nonDirectories(runtime)].sort(), [...expected].sort());
    });

    it(`${shape}: is enough on its own for rpm to expand its macros through the shell and open its database`, async () => {
      // the runtime alone, as rpm meets it before it has installed anything
      const bare = join(work, `bare-${shape}`);
      cpSync(runtimeOf(shape), bare, { recursive: true, verbatimSymlinks: true });
      const r = await inTree(bare, ['/usr/bin/rpm', '--eval', '%{_dbpath} %{__plugindir}']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout.trim(), shape === 'busybox' ? '/usr/lib/sysimage/rpm /usr/lib/rpm-plugins' : '/var/lib/rpm /usr/lib64/rpm-plugins');
      const init = await inTree(bare, ['/usr/bin/rpm', '--initdb']);
      assert.equal(init.code, 0, init.stderr);
      assert.ok(existsSync(join(bare, r.stdout.trim().split(' ')[0]!, 'rpmdb.sqlite')));
    });
  }

  it('bootstraps the busybox repository: no bash, rpm -qa is the resolved set, rpm -V passes, the database where the macro put it', async () => {
    const { dir, db, result } = built('busybox');
    assert.equal((await inspectTree(dir)).kind, 'complete');
    const names = [...db.files.keys()].sort();
    const resolved = JSON.parse(result.stdout.trim().split('\n').filter((l) => l.includes('"type":"result"')).pop()!) as { packages: Record<string, string> };
    assert.deepEqual(names, Object.keys(resolved.packages).sort());
    assert.ok(!names.includes('bash') && names.includes('busybox') && names.includes('rpm-plugin-nsbox'), names.join(' '));
    const q = await inTree(dir, ['/usr/bin/rpm', '-q', 'busybox']);
    assert.equal(q.stdout.trim(), 'busybox-1.35.0-2.fc40.x86_64', 'the update, from the updates repository');
    assert.equal(readlinkSync(join(dir, 'usr/bin/sh')), 'busybox');
    assert.ok(existsSync(join(dir, 'usr/lib/sysimage/rpm/rpmdb.sqlite')) && !existsSync(join(dir, 'var/lib/rpm/rpmdb.sqlite')));
    const v = await inTree(dir, ['/usr/bin/rpm', '-Va']);
    const changed = v.stdout.split('\n').filter(Boolean);
    assert.ok(changed.every((l) => /^S\.5\.\.\.\.T\.\s+c \/etc\/yum\.repos\.d\/\S+\.repo$/.test(l)), changed.join('\n') + v.stderr);
  });

  it("loaded the plugin rpm requires during the bootstrap's transaction, and ran its %post with busybox's sh", () => {
    const { dir, result } = built('busybox');
    assert.equal(result.stderr, '');
    // written by the plugin's init hook (which needs the plugin's configuration), then by its %post
    assert.match(readFileSync(join(dir, 'var/log/rpm-plugin-nsbox.log'), 'utf8'), /^loaded mark=rpm-plugin-nsbox-1\.0\npost 1\n/);
  });

  it('installs the documentation and translation the runtime left out', () => {
    const { dir, runtime } = built('busybox');
    for (const f of ['usr/share/doc/busybox/README', 'usr/share/locale/de/LC_MESSAGES/busybox.mo']) {
      assert.ok(existsSync(join(dir, f)), f);
      assert.ok(!existsSync(join(runtime, f)), f);
    }
  });
});
