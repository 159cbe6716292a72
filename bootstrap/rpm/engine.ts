/**
 * The Fedora engine: a tree the way `dnf --installroot` (yum for 19–21)
 * builds one, with nsbox's own metadata reader, resolver, downloader,
 * verifier and extractor, and the tree's own rpm doing the installation.
 *
 * Order:
 *  1. index: the release's key (pinned fingerprint; or the --keyring the
 *     user gave), then repomd.xml and primary of the fedora and updates
 *     repositories (a --mirror in Fedora's layout, the archive for
 *     end-of-life releases, else the metalinks);
 *  2. resolve: the variant's packages plus --include, minus --exclude, the
 *     way libsolv chooses (bootstrap/rpm/resolve.ts); filelists are read
 *     only when a file dependency cannot be met from primary;
 *  3. download (shared driver): every .rpm into the cache, its sha256 from
 *     primary checked;
 *  4. unpack: *every* package's header signature (the release's key) and
 *     payload digest checked, and its name-version-release compared with
 *     primary's. Meanwhile (those first in the queue) rpm's runtime — the
 *     whole packages of the Requires closure of rpm, setup, filesystem and
 *     /bin/sh (bootstrap/rpm/runtime.ts says why, and what it leaves out)
 *     — is extracted through the shared cpio writer, the layout
 *     (filesystem, setup) first, owners mapped by name through the tree's
 *     passwd/group;
 *  5. configure, inside the tree with nsbox's runtime: one `rpm -i`
 *     transaction of every package (the cache bind-mounted read-only). rpm
 *     writes every file, orders the transaction, runs %pre before a
 *     package's files and %post after, and its triggers and file triggers
 *     (ldconfig, systemd's sysusers and daemon-reload in real Fedora), so
 *     owners created by a %pre are right. That is exactly what
 *     `dnf --installroot` has rpm do into an empty directory, which is why
 *     `rpm -qa` and `rpm -V` are right afterwards. The alternative —
 *     extracting everything here and registering with `rpm -i --justdb` —
 *     does not work: rpm runs no scriptlets or triggers in --justdb mode
 *     (measured with rpm 4.18), and re-implementing rpm's scriptlet and
 *     trigger order is what the tree's rpm is for. Since rpm writes every
 *     file anyway, nsbox extracts only what rpm may need to run (as
 *     mmdebstrap extracts only dpkg's essential set): what rpm's packaging
 *     declares, not what rpm was seen to open, since its macros may run
 *     shell commands and it dlopens its plugins. Other scriptlet
 *     interpreters are not among it: rpm installs a package's
 *     Requires(pre/post) earlier in the same transaction. rpm checks
 *     dependencies itself (no --nodeps), so a resolver mistake fails here as
 *     it would with dnf. Signatures and digests were checked in step 4
 *     against the pinned key (the tree has no key imported yet), so rpm
 *     runs with --nosignature --nodigest;
 *  6. finish: repository files for the mirror used, releasever, an empty
 *     machine-id, caches and build files removed.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { AbortedError, UsageError, VerifyError } from '../../errors.js';
import type { Engine, EngineContext, Selection } from '../engine.js';
import type { FetchItem, FetchResult } from '../fetch.js';
import { formatCount } from '../progress.js';
import { Arrivals } from '../deferred.js';
import { readTrustedKeys, type TrustedKeys } from '../pgp-lite.js';
import { runInTree } from '../in-tree.js';
import type { BootstrapOptions, Recipe } from '../recipe.js';
import type { RecipeSummary } from '../tree-state.js';
import {
  FEDORA_CURRENT, fedoraRelease, fedoraRepos, loadFedoraKey, variantPackages, type FedoraRelease, type FedoraVariant,
} from '../../recipes/fedora.js';
import { verifyRpm, type RpmFile } from './header.js';
import { nevra, type RpmPackage } from './primary.js';
import { loadRepo, mergeFilelists, type LoadedRepo } from './repository.js';
import { ResolveError, resolve } from './resolve.js';
import { isRuntimeFile, rpmClosure } from './runtime.js';
import { cleanTree, writeReleasever, writeRepoConfig } from './tree-setup.js';
import { RpmUnpacker } from './unpack.js';
import { findRuntime, linkRuntime, newRuntime, releaseRuntime, runtimeKey, type LinkedRuntime } from './runtime-cache.js';

/** Where the cache is bind-mounted (read-only) inside the tree while rpm runs. */
const RPMS_IN_TREE = '/var/lib/nsbox/rpms';
export const LOG_IN_TREE = 'var/log/nsbox-bootstrap.log';
/** Packages always extracted first: the directory layout (merged /usr symlinks) and the users and groups. */
const LAYOUT = ['filesystem', 'setup'];
const PACKAGE_SPEC = /^[A-Za-z0-9_/.+()-][^\s,]*$/;

/** Fedora architecture names nsbox knows, and the host architecture each runs on. */
const ARCHES: Record<string, string> = { x86_64: 'x64', i686: 'ia32', aarch64: 'arm64', ppc64le: 'ppc64', s390x: 's390x' };

/** The validated Fedora recipe. */
interface Plan {
  release: FedoraRelease;
  variant: FedoraVariant;
  arch: string;
  mirror?: string;
  metalink?: string;
  include: string[];
  exclude: string[];
  withRecommends: boolean;
  keyring?: string;
  noVerify: boolean;
}

/**
 * Validates a Fedora recipe (no network, nothing written) and returns the
 * engine for it. Unknown release or variant: a UsageError naming the known ones.
 *
 * @example
 * const engine = await createEngine({ distribution: 'fedora', release: '40', mirror: 'http://127.0.0.1:8080/' }, {});
 */
export async function createEngine(recipe: Recipe, options: BootstrapOptions): Promise<Engine> {
  return new FedoraEngine(planFor(recipe), options.stageCache !== false);
}

function planFor(recipe: Recipe): Plan {
  const release = fedoraRelease(recipe.release ?? FEDORA_CURRENT);
  const variant = (recipe.variant ?? 'minimal') as FedoraVariant;
  variantPackages(release, variant); // throws for an unknown variant
  const arch = recipe.arch ?? hostArch();
  if (!(arch in ARCHES)) throw new UsageError(`unknown architecture \`${arch}\``, { hint: `known: ${Object.keys(ARCHES).join(', ')}` });
  if (ARCHES[arch] !== process.arch && !(arch === 'i686' && process.arch === 'x64')) {
    const qemu = arch === 'i686' ? 'i386' : arch;
    if (!existsSync(`/proc/sys/fs/binfmt_misc/qemu-${qemu}`)) {
      throw new UsageError(`cannot bootstrap ${arch} on this ${hostArch()} host: the tree's own rpm must run here`, { hint: `register a qemu-user binfmt handler for ${qemu}, or bootstrap ${hostArch()}` });
    }
  }
  if (recipe.mirror !== undefined && recipe.metalink !== undefined) throw new UsageError('cannot use --mirror and --metalink together', { hint: 'give one of them' });
  for (const [flag, url] of [['--mirror', recipe.mirror], ['--metalink', recipe.metalink]] as const) {
    if (url !== undefined && !/^(https?|file):\/\/./.test(url)) {
      throw new UsageError(`invalid ${flag} \`${url}\``, { hint: flag === '--mirror' ? 'use the http(s):// URL of a Fedora mirror root, the directory that holds releases/ and updates/' : 'use an http(s):// URL; $repo and $basearch are filled in' });
    }
  }
  for (const [flag, list] of [['--include', recipe.include], ['--exclude', recipe.exclude]] as const) {
    for (const n of list ?? []) if (!PACKAGE_SPEC.test(n)) throw new UsageError(`invalid package name \`${n}\` in ${flag}`, { hint: 'give package names, provides or file paths, separated by commas' });
  }
  if (recipe.keyring && !existsSync(recipe.keyring)) throw new UsageError(`cannot read keyring \`${recipe.keyring}\`: no such file`);
  return {
    release, variant, arch, mirror: recipe.mirror, metalink: recipe.metalink, include: recipe.include ?? [], exclude: recipe.exclude ?? [],
    withRecommends: !!recipe.withRecommends, keyring: recipe.keyring, noVerify: !!recipe.noVerify,
  };
}

/** The host's architecture in Fedora's names. */
export function hostArch(): string {
  return Object.entries(ARCHES).find(([, node]) => node === process.arch)?.[0] ?? process.arch;
}

class FedoraEngine implements Engine {
  readonly summary: RecipeSummary & { variant: string };
  #plan: Plan;
  #keys: TrustedKeys = { certificates: [], raw: [] };
  #repos: LoadedRepo[] = [];
  #pool: RpmPackage[] = [];
  #order: RpmPackage[] = [];
  /** Packages in the order of the selection's items (download order: rpm's closure first). */
  #items: RpmPackage[] = [];
  /** rpm's closure (its runtime: what is extracted before rpm runs). */
  #first = new Set<RpmPackage>();
  /** Each package's verified file in the cache, as it lands during the download phase. */
  #files = new Arrivals<RpmPackage, string>();
  #pipeline?: Promise<{ extracted: number; linked: number }>;
  /** Verified so far, and whether the unpack phase (whose progress it is) has begun. */
  #verified = 0;
  #unpackPhase = false;
  #forceDebian = false;

  /** Whether rpm's runtime may come from (and go into) the cache (--no-stage-cache says no). */
  #runtimeCache: boolean;
  /** rpm's runtime as linked from the cache, until rpm has replaced it. */
  #linked?: LinkedRuntime;
  /** Older cached runtimes being removed (after a new one was committed). */
  #pruning?: Promise<void>;

  constructor(plan: Plan, runtimeCache: boolean) {
    this.#plan = plan;
    this.#runtimeCache = runtimeCache;
    this.summary = {
      distribution: 'fedora', release: plan.release.releasever, arch: plan.arch, variant: plan.variant,
      mirror: plan.mirror ?? plan.metalink ?? 'metalink',
    };
    if (plan.include.length) this.summary.include = plan.include;
    if (plan.exclude.length) this.summary.exclude = plan.exclude;
  }

  async index(ctx: EngineContext): Promise<string> {
    const p = this.#plan;
    const repos = fedoraRepos(p.release, p.arch, { mirror: p.mirror, metalink: p.metalink });
    const [keys, loaded] = await Promise.all([this.#loadKeys(ctx), Promise.all(repos.map((r) => loadRepo(ctx, r)))]);
    this.#keys = keys;
    this.#repos = loaded;
    this.#pool = this.#repos.flatMap((r) => r.packages);
    return `${this.#repos.map((r) => r.id).join(', ')}: ${formatCount(this.#pool.length)} packages`;
  }

  /** The keys packages must be signed with: the release's pinned key, or every key of a --keyring the user gave. */
  async #loadKeys(ctx: EngineContext): Promise<TrustedKeys> {
    const p = this.#plan;
    const rel = p.release;
    if (p.noVerify) {
      ctx.log('warn', 'signature checks are OFF (--no-verify): anyone between you and the mirror can change what gets installed');
      return { certificates: [], raw: [] };
    }
    if (p.keyring) {
      let ring: TrustedKeys;
      try {
        ring = readTrustedKeys([await readFile(p.keyring)]);
      } catch (err) {
        throw new VerifyError(`cannot use keyring \`${p.keyring}\`: ${(err as Error).message.replace(/^cannot read /, 'unreadable ')}`, { hint: 'the keyring file must be an OpenPGP keyring (.gpg) or an armored key (.asc)' });
      }
      if (!ring.certificates.length) throw new VerifyError(`cannot use keyring \`${p.keyring}\`: it holds no key`);
      const fingerprints = ring.certificates.map((c) => c.fingerprint || '(not a version 4 key)');
      if (!fingerprints.includes(rel.fingerprint)) ctx.log('info', `trusting ${fingerprints.join(', ')} from ${p.keyring} (not Fedora ${rel.number}'s key ${rel.fingerprint})`);
      return ring;
    }
    const { keys, source } = await loadFedoraKey(rel, { fetchText: (url) => ctx.http.getText(url, { signal: ctx.signal }) });
    ctx.log('debug', `Fedora ${rel.number} key ${rel.fingerprint} from ${source.location}`);
    return keys;
  }

  async resolve(ctx: EngineContext): Promise<Selection> {
    const p = this.#plan;
    const excluded = p.exclude.map((g) => new RegExp(`^${g.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
    const install = [...variantPackages(p.release, p.variant).filter((n) => !excluded.some((g) => g.test(n))), ...p.include];
    const run = () => resolve({ pool: this.#pool, install, exclude: p.exclude, arch: p.arch, withRecommends: p.withRecommends });
    let r;
    try {
      r = run();
    } catch (err) {
      // primary lists only /etc, *bin/ and sendmail paths; a file dependency elsewhere needs filelists
      if (!(err instanceof ResolveError) || !/`\/[^`]*`/.test(err.message)) throw err;
      ctx.log('info', 'a file dependency needs the full file lists: reading filelists');
      for (const repo of this.#repos) await mergeFilelists(ctx, repo, this.#pool);
      r = run();
    }
    this.#order = r.packages;
    this.#first = rpmClosure(r.packages);
    // rpm's closure downloads first, in install order: its extraction starts while the rest arrives
    this.#items = [...r.packages.filter((pkg) => this.#first.has(pkg)), ...r.packages.filter((pkg) => !this.#first.has(pkg))];
    const base = new Map(this.#repos.map((x) => [x.id, x.base]));
    const items: FetchItem[] = this.#items.map((pkg) => ({
      url: `${pkg.locationBase ? pkg.locationBase.replace(/\/*$/, '/') : base.get(pkg.repo!)}${pkg.location}`,
      digest: pkg.checksum, size: pkg.size, name: basename(pkg.location),
    }));
    const packages: Record<string, string> = {};
    for (const pkg of r.packages) packages[pkg.name] = `${pkg.evr.epoch ? `${pkg.evr.epoch}:` : ''}${pkg.evr.version}-${pkg.evr.release}`;
    const first = this.#first.size;
    return { items, packages, detail: `${r.packages.length} packages (${first} for rpm itself)` };
  }

  /** A package file is in the cache, verified against primary's checksum: its checks and extraction may start. */
  landed(ctx: EngineContext, index: number, file: FetchResult): void {
    this.#files.arrive(this.#items[index]!, file.path);
    if (!this.#pipeline) {
      this.#pipeline = this.#unpackAsTheyLand(ctx);
      this.#pipeline.catch(() => {}); // reported by unpack()
    }
  }

  async unpack(ctx: EngineContext, files: FetchResult[]): Promise<string> {
    files.forEach((f, i) => { if (!this.#files.get(this.#items[i]!)) this.landed(ctx, i, f); });
    this.#unpackPhase = true;
    ctx.emit({ type: 'count', phase: 'unpack', done: this.#verified, total: this.#order.length });
    const { extracted, linked } = await this.#pipeline!;
    for (const u of this.#unknownOwners) ctx.log('debug', `${u} is not in the tree yet; owned by root until rpm installs the package`);
    const runtime = linked ? `rpm's runtime (${extracted ? `${extracted} packages extracted into the cache, ` : ''}${linked} files) linked from the cache` : `${extracted} extracted for rpm to run`;
    return `${this.#order.length} packages verified, ${runtime}`;
  }

  /** Owner names rpm's runtime had that its tree did not know yet (mapped to root until rpm installs them). */
  #unknownOwners: string[] = [];

  /**
   * Every package's signature and payload digest checked as it lands (two
   * at a time); meanwhile rpm's closure is extracted in install order, each
   * package as soon as it and those before it are checked.
   */
  async #unpackAsTheyLand(ctx: EngineContext): Promise<{ extracted: number; linked: number }> {
    const p = this.#plan;
    const stop = AbortSignal.any([this.#files.signal, ...(ctx.signal ? [ctx.signal] : [])]);
    const limit = limiter(2);
    const checks = new Map<RpmPackage, Promise<RpmFile>>();
    for (const pkg of this.#items) {
      const check = this.#files.wait(pkg).then((path) => limit(async () => {
        stop.throwIfAborted();
        const rpm = await verifyRpm(path, { keys: this.#keys, noSignature: p.noVerify });
        if (rpm.nevra !== nevra(pkg)) {
          throw new VerifyError(`cannot verify ${nevra(pkg)}: the file is ${rpm.nevra}`, { hint: 'the repository metadata and the package disagree; the mirror may be broken' });
        }
        ++this.#verified;
        if (this.#unpackPhase) ctx.emit({ type: 'count', phase: 'unpack', done: this.#verified, total: this.#order.length, current: `verified ${pkg.name}` });
        return rpm;
      }));
      check.catch(() => {}); // awaited below
      checks.set(pkg, check);
    }
    mkdirSync(join(ctx.dir, 'var/lib/nsbox'), { recursive: true, mode: 0o755 });
    let extracted = 0;
    let librpm: string[] = [];
    try {
      // rpm's runtime: extracted into the cache (unless an identical one is there already), then
      // hard-linked into the tree; extracted into the tree when the cache cannot be used
      const closure = this.#order.filter((pkg) => this.#first.has(pkg));
      const key = runtimeKey(p.arch, closure.map((pkg) => ({ nevra: nevra(pkg), sha256: `${pkg.checksum.algo}:${pkg.checksum.hex}` })));
      let runtime = this.#runtimeCache ? findRuntime(ctx.cache, key) : undefined;
      if (!runtime) {
        const fresh = this.#runtimeCache ? newRuntime(ctx.cache, key) : undefined;
        try {
          ({ extracted, librpm } = await this.#extractRuntime(closure, checks, fresh?.dir ?? ctx.dir, stop));
        } catch (err) {
          await fresh?.discard();
          throw err;
        }
        if (fresh) {
          runtime = fresh.commit();
          this.#pruning = fresh.prune(); // old runtimes go while rpm runs
        }
      }
      if (runtime) {
        try {
          this.#linked = linkRuntime(runtime, ctx.dir);
          librpm = this.#linked.files.map((f) => `/${f.rel}`).filter((f) => /\/librpm\.so\.\d+$/.test(f));
        } catch (err) {
          // another file system (or links refused): extract into the tree after all
          ctx.log('debug', `rpm's runtime not linked from the cache (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); extracting it`);
          ({ extracted, librpm } = await this.#extractRuntime(closure, checks, ctx.dir, stop));
        }
      }
      this.#forceDebian = isDebianRpm(ctx.dir, librpm);
    } finally {
      // nothing is left running when this ends, failed or not
      await Promise.allSettled(checks.values());
    }
    for (const c of checks.values()) await c; // the first failure, if any
    return { extracted, linked: this.#linked?.files.length ?? 0 };
  }

  /** The tree shares no inode with the cache any more (rpm replaced the linked files; what it did not is copied). */
  async #releaseRuntime(ctx: EngineContext): Promise<void> {
    const linked = this.#linked;
    if (!linked) return;
    this.#linked = undefined;
    if (!(await releaseRuntime(linked, ctx.dir))) ctx.log('debug', "rpm's cached runtime was written through a link; dropped from the cache");
  }

  /**
   * Extracts rpm's runtime (runtime.ts: the closure packages, less their
   * directory entries, documentation and translations) into `dir`: the
   * layout (merged-/usr symlinks) and the users and groups first, in install
   * order; then each package as soon as it is checked. rpm rewrites every
   * file anyway, and without directory entries the packages of this set
   * have nothing to overwrite in each other (that would be a file conflict
   * rpm refuses), so a big download late in the list holds nothing up.
   */
  async #extractRuntime(closure: RpmPackage[], checks: Map<RpmPackage, Promise<RpmFile>>, dir: string, stop: AbortSignal): Promise<{ extracted: number; librpm: string[] }> {
    const unpacker = new RpmUnpacker(dir, { skipDirectories: true });
    let extracted = 0;
    const librpm: string[] = [];
    let chain = Promise.resolve();
    const extract = (pkg: RpmPackage, rpm: RpmFile) => {
      // one package at a time, in the order they become ready
      chain = chain.then(async () => {
        stop.throwIfAborted();
        const written = await unpacker.extract(rpm, isRuntimeFile);
        librpm.push(...written.filter((w) => /\/librpm\.so\.\d+$/.test(w)));
        extracted++;
      });
      return chain;
    };
    try {
      for (const pkg of closure.filter((p) => LAYOUT.includes(p.name))) await extract(pkg, await checks.get(pkg)!);
      await Promise.all(closure.filter((p) => !LAYOUT.includes(p.name)).map(async (pkg) => extract(pkg, await checks.get(pkg)!)));
      await chain;
    } catch (err) {
      await chain.catch(() => {}); // nothing is left writing when this fails
      throw err;
    }
    await unpacker.finish();
    this.#unknownOwners = [...unpacker.ids.unknown];
    return { extracted, librpm };
  }

  async configure(ctx: EngineContext): Promise<string> {
    const { dir } = ctx;
    const cacheDir = ctx.cache.dir.replace(/\/+$/, '');
    const inTree = (pkg: RpmPackage) => `${RPMS_IN_TREE}/${this.#files.get(pkg)!.slice(cacheDir.length + 1)}`;
    // Debian's build of rpm (the synthetic test repository's) asks for --force-debian; Fedora's has no such flag.
    // Signatures and digests were checked against the pinned key in unpack (the tree has no key imported yet).
    const command = ['rpm', '-i', '-v', '--nosignature', '--nodigest', ...(this.#forceDebian ? ['--force-debian'] : []), ...this.#order.map(inTree)];
    await mkdir(join(dir, RPMS_IN_TREE), { recursive: true });
    await mkdir(join(dir, LOG_IN_TREE, '..'), { recursive: true, mode: 0o755 });
    const names = new Map(this.#order.map((pkg) => [nevra(pkg), pkg.name]));
    const total = this.#order.length;
    let done = 0;
    await runInTree(dir, command, {
      logFile: join(dir, LOG_IN_TREE),
      what: 'install the packages with rpm',
      signal: ctx.signal,
      bindRo: [`${cacheDir}:${RPMS_IN_TREE}`],
      setenv: ['LC_ALL=C', 'LANG=C'],
      onLine: (line) => {
        const name = names.get(line.trim());
        if (name) ctx.emit({ type: 'count', phase: 'configure', done: ++done, total, current: name });
      },
    });
    await this.#releaseRuntime(ctx);
    await this.#pruning?.catch(() => {});
    return `${total} packages installed by rpm`;
  }

  async finish(ctx: EngineContext): Promise<string> {
    const { dir } = ctx;
    const p = this.#plan;
    for (const f of [RPMS_IN_TREE, ...(process.env.NSBOX_KEEP_LOG ? [] : [LOG_IN_TREE])]) await rm(join(dir, f), { recursive: true, force: true });
    const repos = await writeRepoConfig(dir, p.release, { mirror: p.mirror, metalink: p.metalink, keyring: p.keyring });
    const vars = await writeReleasever(dir, p.release);
    await cleanTree(dir);
    return repos.length ? `${repos.join(', ')} and ${vars} written` : `${vars} written`;
  }

  async dispose(ctx: EngineContext, failed: boolean): Promise<void> {
    // a failed download leaves packages that never land: stop what waits for them
    this.#files.stop(new AbortedError('stopped'));
    await this.#pipeline?.catch(() => {});
    await this.#pruning?.catch(() => {});
    await this.#releaseRuntime(ctx).catch(() => {});
    if (failed && existsSync(join(ctx.dir, LOG_IN_TREE))) ctx.log('info', `the rpm log is ${join(ctx.dir, LOG_IN_TREE)}`);
  }
}

/** Whether rpm's library among the files just written is Debian's build (which wants --force-debian). */
function isDebianRpm(dir: string, libraries: string[]): boolean {
  for (const path of libraries) {
    try {
      if (readFileSync(join(dir, path)).includes('force-debian')) return true;
    } catch {
      /* a dangling symlink */
    }
  }
  return false;
}

/** Runs at most `n` of the functions given at once. */
function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (f) => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await f();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
