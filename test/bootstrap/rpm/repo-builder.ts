/**
 * Builds and serves a synthetic Fedora repository for tests and benchmarks
 * (Fedora's mirrors are not reachable here): the spec files in
 * fixtures/rpm/specs/ built with rpmbuild, signed with rpmsign and a
 * throwaway key made at build time (never committed), indexed with
 * createrepo_c, laid out like a Fedora mirror:
 *
 *   releases/N/Everything/x86_64/os/{Packages/<l>/,repodata/}
 *   updates/N/Everything/x86_64/{Packages/<l>/,repodata/}   (updates/N/x86_64/ before 28)
 *
 * glibc, bash, coreutils and rpm carry the host's Debian binaries and the
 * libraries ldd finds for them, so a tree built from this repository has a
 * working /bin/sh and rpm. Built repositories are cached under
 * /var/cache/nsbox/test-rpm-repo/<hash of specs, builder and host files>.
 *
 * Two shapes, so what holds for one rpm build is tested on another:
 * - `bash` (the default): bash is /bin/sh, rpm's database in /var/lib/rpm
 *   from a literal macro in /etc/rpm, no plugin;
 * - `busybox`: no bash at all; the host's static busybox is /bin/sh (its
 *   update in the updates repository), rpm's `_dbpath` comes from a shell
 *   expansion in /usr/lib/rpm/macros.d (as Debian's `%(bash -c …)`), and
 *   rpm requires a plugin it dlopens from its own `__plugindir`, which
 *   reads a configuration file of its own. Its specs are those of
 *   fixtures/rpm/specs-busybox/ over (or beside) the common ones, without
 *   bash.spec; its packages are signed by a key of its own.
 */
import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { chmod, cp, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);
const SPECS = fileURLToPath(new URL('../../../fixtures/rpm/specs/', import.meta.url));
/** Specs of the busybox shape that replace or add to the common ones. */
const BUSYBOX_SPECS = fileURLToPath(new URL('../../../fixtures/rpm/specs-busybox/', import.meta.url));

/** How a repository is built (see the module comment). */
export type RepoShape = 'bash' | 'busybox';

/** The spec files of a shape: file name → directory holding it. */
function specFiles(shape: RepoShape): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(SPECS).filter((n) => n.endsWith('.spec'))) out.set(f, SPECS);
  if (shape === 'busybox') {
    out.delete('bash.spec');
    for (const f of readdirSync(BUSYBOX_SPECS).filter((n) => n.endsWith('.spec'))) out.set(f, BUSYBOX_SPECS);
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}
const CACHE = '/var/cache/nsbox/test-rpm-repo';
const ARCH = 'x86_64';

/** A built (and maybe served) test repository. */
export interface TestRepo {
  /** Mirror root on disk (the directory passed in). */
  root: string;
  /** Mirror root URL on loopback, ending in `/` (like `…/pub/fedora/linux/`); '' when not served. */
  baseUrl: string;
  /** Repository base URLs of the release and updates repositories. */
  releaseUrl: string;
  updatesUrl: string;
  /** Paths of the two repositories on disk. */
  releaseDir: string;
  updatesDir: string;
  /** Armored public key that signed every package, and its fingerprint (upper-case hex). */
  keyFile: string;
  fingerprint: string;
  /** Another key's public half, and a package signed by that key instead. */
  otherKeyFile: string;
  otherKeyRpm: string;
  /** A package exactly as rpmbuild made it, unsigned. */
  unsignedRpm: string;
  release: number;
  /** Stops the HTTP server. */
  close(): Promise<void>;
}

/** Host files staged into one package: destination path → host source path. */
type Staging = Map<string, Map<string, string>>;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.stdout ?? '';
}

/** /lib/x → /usr/lib/x, /bin/x → /usr/bin/x (the tree is merged-/usr). */
const usrPath = (p: string) => (/^\/(lib|lib64|bin|sbin)\//.test(p) ? `/usr${p}` : p);

/** The host's files for glibc, the shell, coreutils, rpm, and one package per Debian library package. */
function stageHost(shape: RepoShape): Staging {
  const pkgs: Staging = new Map();
  const put = (pkg: string, dest: string, src: string) => {
    if (!pkgs.has(pkg)) pkgs.set(pkg, new Map());
    pkgs.get(pkg)!.set(dest, src);
  };
  const coreutils = sh('dpkg', ['-L', 'coreutils']).split('\n').filter((p) => /^\/(usr\/)?s?bin\/[^/]+$/.test(p) && lstatSync(p).isFile());
  const bins: [string, string[]][] = [
    shape === 'busybox' ? ['busybox', ['/usr/bin/busybox']] : ['bash', ['/usr/bin/bash']],
    ['coreutils', coreutils],
    ['rpm', ['/usr/bin/rpm', '/usr/bin/rpmdb', '/usr/bin/rpmkeys', '/usr/bin/rpmquery', '/usr/bin/rpmverify']],
  ];
  const libs = new Set<string>();
  for (const [pkg, files] of bins) {
    for (const f of files) {
      put(pkg, usrPath(f), f);
      if (!lstatSync(f).isSymbolicLink()) for (const l of lddOf(f)) libs.add(l);
    }
  }
  // rpm's runtime configuration (not the build scripts, whose interpreters would become dependencies)
  const rpmDir = '/usr/lib/rpm';
  for (const f of ['macros', 'rpmrc', ...readdirSync(rpmDir).filter((n) => n.startsWith('rpmpopt-'))]) put('rpm', `${rpmDir}/${f}`, `${rpmDir}/${f}`);
  for (const sub of ['platform', 'macros.d']) walk(`${rpmDir}/${sub}`, (p) => put('rpm', p, p));
  // libraries: libc6's go to glibc, the rest to a package named after their Debian package
  const owners = new Map<string, string>();
  // dpkg knows a library under /lib or /usr/lib, whichever its package shipped (merged /usr)
  const alt = (p: string) => (p.startsWith('/usr/') ? p.slice(4) : `/usr${p}`);
  for (const line of sh('dpkg', ['-S', ...libs, ...[...libs].map(alt)]).split('\n')) {
    const m = /^([^:]+)(?::\w+)?: (.+)$/.exec(line);
    if (m) { owners.set(m[2]!, m[1]!); owners.set(alt(m[2]!), m[1]!); }
  }
  for (const l of libs) {
    const owner = owners.get(l) ?? 'hostlib-misc';
    const pkg = owner === 'libc6' ? 'glibc' : owner;
    const real = realpathSync(l);
    put(pkg, usrPath(real.replace(/^\/usr\//, '/')), real);
    if (lstatSync(l).isSymbolicLink() || usrPath(l) !== usrPath(real.replace(/^\/usr\//, '/'))) put(pkg, usrPath(l), `symlink:${relative(dirname(usrPath(l)), usrPath(real.replace(/^\/usr\//, '/')))}`);
  }
  return pkgs;
}

function walk(dir: string, f: (p: string) => void): void {
  f(dir);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, f);
    else f(p);
  }
}

function lddOf(file: string): string[] {
  const out: string[] = [];
  for (const line of sh('ldd', [file]).split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** Hash of everything that shapes the repository: specs, this builder, the host's installed packages. */
function inputsHash(release: number, shape: RepoShape): string {
  const h = createHash('sha256');
  h.update(`release ${release} shape ${shape}\n`);
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  for (const [f, dir] of specFiles(shape)) h.update(`${f}\n`).update(readFileSync(join(dir, f)));
  h.update(readFileSync(join(SPECS, 'hostlib.spec.in')));
  // any package upgrade on the host (bash, coreutils, rpm, a library) changes dpkg's status file
  h.update(readFileSync('/var/lib/dpkg/status'));
  return h.digest('hex').slice(0, 24);
}

async function stageFiles(sources: string, pkg: string, files: Map<string, string>): Promise<void> {
  const root = join(sources, `${pkg}-root`);
  const list: string[] = [];
  for (const [dest, src] of files) {
    const to = join(root, dest);
    await mkdir(dirname(to), { recursive: true });
    if (src.startsWith('symlink:')) { await symlink(src.slice(8), to); list.push(dest); continue; }
    const st = lstatSync(src);
    if (st.isDirectory()) { await mkdir(to, { recursive: true }); list.push(`%dir ${dest}`); continue; }
    if (st.isSymbolicLink()) { await symlink(readlinkSync(src), to); list.push(dest); continue; }
    await copyFile(src, to);
    // shared objects need the executable bit for rpm's ELF dependency generator (Fedora ships them 0755)
    await chmod(to, /\.so(\.|$)/.test(dest) || (st.mode & 0o111) !== 0 ? 0o755 : 0o644);
    list.push(dest);
  }
  if (pkg === 'glibc') {
    await mkdir(join(root, 'usr/lib64'), { recursive: true });
    if (!existsSync(join(root, 'usr/lib64/ld-linux-x86-64.so.2'))) {
      await symlink('../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(root, 'usr/lib64/ld-linux-x86-64.so.2'));
      list.push('/usr/lib64/ld-linux-x86-64.so.2');
    }
    list.push('%dir /usr/lib/x86_64-linux-gnu');
  }
  await writeFile(join(sources, `${pkg}.files`), list.join('\n') + '\n');
}

async function pool<T>(items: T[], n: number, f: (t: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: n }, async () => { for (let t = queue.shift(); t !== undefined; t = queue.shift()) await f(t); }));
}

async function genKey(home: string, name: string): Promise<string> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: home };
  await execFile('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', name, 'rsa3072', 'sign', 'never'], { env });
  const out = (await execFile('gpg', ['--batch', '--with-colons', '--list-keys'], { env })).stdout;
  return /^fpr:+([0-9A-F]+):/m.exec(out)![1]!;
}

async function sign(home: string, fpr: string, rpms: string[]): Promise<void> {
  await execFile('rpmsign', ['--addsign', '--define', '__gpg /usr/bin/gpg', '--define', `_gpg_name ${fpr}`, '--define', `_gpg_path ${home}`, ...rpms], { env: { ...process.env, GNUPGHOME: home } });
}

/** Builds the repository tree into `out` (a fresh directory). */
async function build(out: string, staging: Staging, release: number, shape: RepoShape): Promise<void> {
  const top = join(out, 'rpmbuild');
  const sources = join(top, 'SOURCES');
  const specsDir = join(top, 'SPECS');
  await mkdir(sources, { recursive: true });
  await mkdir(specsDir, { recursive: true });
  for (const [pkg, files] of staging) await stageFiles(sources, pkg, files);

  const specs: { file: string; repo: 'releases' | 'updates' }[] = [];
  for (const [f, dir] of specFiles(shape)) {
    const text = await readFile(join(dir, f), 'utf8');
    await writeFile(join(specsDir, f), text);
    specs.push({ file: f, repo: text.startsWith('#repo: updates') ? 'updates' : 'releases' });
  }
  const template = await readFile(join(SPECS, 'hostlib.spec.in'), 'utf8');
  for (const pkg of staging.keys()) {
    if (['glibc', 'bash', 'busybox', 'coreutils', 'rpm'].includes(pkg)) continue;
    await writeFile(join(specsDir, `${pkg}.spec`), template.replaceAll('@NAME@', pkg));
    specs.push({ file: `${pkg}.spec`, repo: 'releases' });
  }

  const byRepo = { releases: [] as string[], updates: [] as string[] };
  await pool(specs, 4, async ({ file, repo }) => {
    const rpmsOut = join(top, 'RPMS', file);
    await execFile('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, '--define', `_rpmdir ${rpmsOut}`, '--define', `_builddir ${join(top, 'BUILD', file)}`,
      '--define', `fedora ${release}`, '--define', `dist .fc${release}`, '--define', '_buildhost nsbox-test', join(specsDir, file)], { maxBuffer: 64 << 20 })
      .catch((e: { stderr?: string }) => { throw new Error(`rpmbuild ${file} failed: ${e.stderr?.slice(-2000)}`); });
    for (const arch of await readdir(rpmsOut)) for (const r of await readdir(join(rpmsOut, arch))) byRepo[repo].push(join(rpmsOut, arch, r));
  });

  const extra = join(out, 'extra');
  await mkdir(extra, { recursive: true });
  const sample = byRepo.releases.find((p) => p.includes('nsbox-testfiles-1.0'))!;
  await copyFile(sample, join(extra, 'unsigned.rpm'));
  await copyFile(sample, join(extra, 'other-key.rpm'));

  const home = join(out, 'gnupg');
  const fpr = await genKey(home, `nsbox test key (Fedora ${release}${shape === 'bash' ? '' : `, ${shape}`}) <nsbox-test@example.invalid>`);
  await sign(home, fpr, [...byRepo.releases, ...byRepo.updates]);
  const env = { ...process.env, GNUPGHOME: home };
  await writeFile(join(out, 'RPM-GPG-KEY-nsbox-test'), (await execFile('gpg', ['--batch', '--armor', '--export', fpr], { env })).stdout);
  await writeFile(join(out, 'fingerprint'), fpr);
  const otherHome = join(out, 'gnupg-other');
  const otherFpr = await genKey(otherHome, 'nsbox other key <nsbox-other@example.invalid>');
  await sign(otherHome, otherFpr, [join(extra, 'other-key.rpm')]);
  await writeFile(join(out, 'RPM-GPG-KEY-nsbox-other'), (await execFile('gpg', ['--batch', '--armor', '--export', otherFpr], { env: { ...process.env, GNUPGHOME: otherHome } })).stdout);

  const tree = join(out, 'tree');
  // updates/N/Everything/ARCH since Fedora 28, updates/N/ARCH before (the archive's layout)
  const dirs = { releases: join(tree, `releases/${release}/Everything/${ARCH}/os`), updates: join(tree, release >= 28 ? `updates/${release}/Everything/${ARCH}` : `updates/${release}/${ARCH}`) };
  for (const repo of ['releases', 'updates'] as const) {
    for (const r of byRepo[repo]) {
      const base = r.slice(r.lastIndexOf('/') + 1);
      const dest = join(dirs[repo], 'Packages', base[0]!.toLowerCase(), base);
      await mkdir(dirname(dest), { recursive: true });
      await rename(r, dest);
    }
    // the release repository's metadata in gzip, the updates' in xz (Debian's createrepo_c 0.17 has no zstd)
    await execFile('createrepo_c', ['--quiet', '--general-compress-type', repo === 'releases' ? 'gz' : 'xz', dirs[repo]]);
  }
  await rm(top, { recursive: true, force: true });
  // rpmsign started a gpg-agent per key home: stop them, no daemon outlives the build
  for (const h of [home, otherHome]) await execFile('gpgconf', ['--homedir', h, '--kill', 'gpg-agent']).catch(() => {});
}

function serve(root: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const path = join(root, url);
    if (!path.startsWith(root) || !existsSync(path) || !statSync(path).isFile()) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-length': statSync(path).size, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') { res.end(); return; }
    createReadStream(path).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

/**
 * Builds (or takes from the cache) the synthetic Fedora repository for
 * `release` in the given shape (`bash` unless told), copies it into `dir`,
 * and serves `dir` on loopback HTTP.
 *
 * @example
 * const repo = await buildFedoraTestRepo('/tmp/mirror', { release: 40 });
 * // repo.releaseUrl === 'http://127.0.0.1:PORT/releases/40/Everything/x86_64/os/'
 * await repo.close();
 */
export async function buildFedoraTestRepo(dir: string, opts: { release?: number; serve?: boolean; shape?: RepoShape } = {}): Promise<TestRepo> {
  const release = opts.release ?? 40;
  const shape = opts.shape ?? 'bash';
  const cached = join(CACHE, `f${release}${shape === 'bash' ? '' : `-${shape}`}-${inputsHash(release, shape)}`);
  if (!existsSync(join(cached, 'fingerprint'))) {
    await mkdir(CACHE, { recursive: true });
    const tmp = await mkdtemp(join(CACHE, 'build-'));
    try {
      await build(tmp, stageHost(shape), release, shape);
      await rename(tmp, cached).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e; // a parallel build won the race
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  await mkdir(dir, { recursive: true });
  await cp(join(cached, 'tree'), dir, { recursive: true });
  const extra = join(dir, '..', `${relative(dirname(dir), dir)}-extra`);
  await cp(join(cached, 'extra'), extra, { recursive: true });
  for (const k of ['RPM-GPG-KEY-nsbox-test', 'RPM-GPG-KEY-nsbox-other']) await copyFile(join(cached, k), join(extra, k));
  const fingerprint = (await readFile(join(cached, 'fingerprint'), 'utf8')).trim();
  const releasePath = `releases/${release}/Everything/${ARCH}/os/`;
  const updatesPath = release >= 28 ? `updates/${release}/Everything/${ARCH}/` : `updates/${release}/${ARCH}/`;
  let server: Server | undefined;
  let baseUrl = '';
  if (opts.serve !== false) {
    const s = await serve(dir);
    server = s.server;
    baseUrl = `http://127.0.0.1:${s.port}/`;
  }
  return {
    root: dir, baseUrl, release, fingerprint,
    releaseUrl: baseUrl && baseUrl + releasePath, updatesUrl: baseUrl && baseUrl + updatesPath,
    releaseDir: join(dir, releasePath), updatesDir: join(dir, updatesPath),
    keyFile: join(extra, 'RPM-GPG-KEY-nsbox-test'), otherKeyFile: join(extra, 'RPM-GPG-KEY-nsbox-other'),
    otherKeyRpm: join(extra, 'other-key.rpm'), unsignedRpm: join(extra, 'unsigned.rpm'),
    close: () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  };
}
