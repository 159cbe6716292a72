/**
 * The Debian engine: a tree the way debootstrap and mmdebstrap build one,
 * with nsbox's own index, resolver, downloader and extractor, and the
 * tree's own dpkg doing the installation.
 *
 * Order (debootstrap `scripts/debian-common` second_stage_install,
 * mmdebstrap `run_extract` / `run_essential` / `run_install`):
 *  1. index: InRelease verified against the archive keys, then Packages, for
 *     the release and (stable releases) its -updates and -security suites,
 *     all at once when the release is named by codename;
 *  2. resolve: the variant's selection, closed over Depends/Pre-Depends;
 *  3. download (shared driver): every .deb, verified, into the cache;
 *  4. unpack: dpkg's database skeleton, then the essential set (Essential:
 *     yes and what it depends on) streamed .deb → tree, so that the tree's
 *     sh, coreutils and dpkg can run; policy-rc.d and a diverted
 *     start-stop-daemon so nothing starts;
 *  5. configure, inside the tree with nsbox's runtime:
 *     `dpkg --install --force-depends` of the essential set in one call, as
 *     mmdebstrap does (the essential set has dependency cycles and Pre-Depends
 *     that dpkg cannot order before it is registered; every file is already
 *     in place, so forcing is safe, and debootstrap's one-package-at-a-time
 *     core install is much slower), then `dpkg --install` of the remaining
 *     packages *without* forcing: dpkg orders their configuration itself,
 *     and refusing would reveal a dependency the resolver got wrong. They go
 *     in as few calls as their Pre-Depends allow (a Pre-Depends target must
 *     be configured before its dependant is unpacked, so a package whose
 *     Pre-Depends lie among the remaining ones waits for the next call).
 *     Then `dpkg --audit` must be silent;
 *  6. finish: the services guard undone, apt sources for the mirror and
 *     suites used, an empty machine-id, hostname, caches and lists removed.
 *
 * Speed, without changing what dpkg does: dpkg runs with force-unsafe-io,
 * and every sync call inside is a no-op (runInTree's --suppress-sync; the
 * driver syncs once before marking the tree complete); dpkg
 * reads copies of the packages whose data member is stored uncompressed
 * (written from the verified files while extracting, and for the remaining
 * packages while dpkg installs the essential set); and the tree after step
 * 5's first call — a pure function of the essential packages — is kept in
 * the stage cache (bootstrap/stage-cache.ts), so a rerun restores it and
 * only installs the remaining packages.
 */
import { mkdir, rm, writeFile, copyFile, readFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AbortedError, NetworkError, NsboxError, UsageError } from '../../errors.js';
import type { Engine, EngineContext, Selection } from '../engine.js';
import type { FetchItem, FetchResult } from '../fetch.js';
import { formatCount } from '../progress.js';
import { Arrivals } from '../deferred.js';
import { loadKeyringFiles, type Keyring } from '../pgp.js';
import type { BootstrapOptions, Recipe } from '../recipe.js';
import type { RecipeSummary } from '../tree-state.js';
import { TreeWriter } from '../archive/writer.js';
import { runInTree } from '../in-tree.js';
import { beginSnapshot, dropStage, restoreStage, stageKey, type Snapshot } from '../stage-cache.js';
import { MARKER } from '../tree-state.js';
import { extractDebs, writePlainDeb } from './deb.js';
import { installOrder } from './order.js';
import { loadSuite, type LoadedSuite, type SuiteRequest } from './repository.js';
import { matches, resolve } from './resolve.js';
import { relations, Universe, type PackageInfo } from './universe.js';
import { appliesTo } from './relations.js';
import { allowServices, cleanTree, prepareTree, preventServices } from './tree-setup.js';
import { archiveUrl, isArchiveUrl } from './url.js';
import { sourceDateEpoch } from '../source-date.js';
import {
  DEBIAN_KEYRING, DEFAULT_RELEASE, DEFAULT_VARIANT, chooseMirrors, debianArch, findRelease, findVariant,
  releaseFromArchive, renderSources, selectionFor, suitesFor, type ChosenMirrors, type DebianRelease, type SuiteSource,
} from '../../recipes/debian.js';

const PACKAGE_NAME = /^[a-z0-9][a-z0-9.+-]+$/;
const COMPONENT = /^[a-z0-9][a-z0-9.+/-]*$/;
/** Where dpkg finds the packages (copies with uncompressed data) inside the tree while it runs. */
const PLAIN_IN_TREE = '/var/lib/nsbox/plain';
/**
 * What the essential set's own dpkg run writes but nothing needs before it:
 * documentation, manual pages, translations. Left out of the extraction
 * that makes dpkg runnable (a third to a half of the essential set's files;
 * on this project's machines each file created costs ~0.15 ms), then
 * written by dpkg like everything else.
 */
const NOT_NEEDED_TO_INSTALL = /^usr\/share\/(doc|man|info|locale|lintian)\//;
const ESSENTIAL_SCRIPT = '/var/lib/nsbox/install-essential.sh';
const REST_SCRIPT = '/var/lib/nsbox/install-rest.sh';
export const LOG_IN_TREE = 'var/log/nsbox-bootstrap.log';
/** Bump when the essential stage changes in a way its inputs (packages, order) do not show. */
const STAGE_VERSION = 2;
/** What a cached essential stage needs besides its files. */
interface StageMeta {
  diverted: string[];
}
/** Programs that start services, diverted to a no-op while packages are configured. */
const SERVICE_STARTERS = /^\/(usr\/)?s?bin\/(start-stop-daemon|initctl)$/;
/** debootstrap's core packages, installed first within the essential call (base-passwd's preinst writes /etc/passwd). */
const CORE_FIRST = ['base-passwd', 'base-files', 'dpkg', 'libc6', 'perl-base', 'mawk', 'debconf'];

/** Debian architecture → qemu-user binfmt name, for foreign-architecture checks. */
const QEMU: Record<string, string> = {
  amd64: 'x86_64', i386: 'i386', arm64: 'aarch64', armhf: 'arm', armel: 'arm', ppc64el: 'ppc64le',
  s390x: 's390x', riscv64: 'riscv64', mips64el: 'mips64el', loong64: 'loongarch64',
};

/** The validated Debian recipe. */
interface Plan {
  requested: string;
  release: DebianRelease;
  variant: string;
  arch: string;
  mirrors: ChosenMirrors;
  components: string[];
  include: string[];
  exclude: string[];
  keyringFile: string;
  customKeyring: boolean;
  noVerify: boolean;
  updates: boolean;
  ignoreValidUntil: boolean;
}

/**
 * Validates a Debian recipe (no network, nothing written) and returns the
 * engine for it. Unknown release or variant: a UsageError listing the known
 * ones.
 *
 * @example
 * const engine = await createEngine({ distribution: 'debian', release: 'bookworm', variant: 'minbase' }, {});
 */
export async function createEngine(recipe: Recipe, options: BootstrapOptions): Promise<Engine> {
  return new DebianEngine(planFor(recipe, options), options.stageCache !== false);
}

function planFor(recipe: Recipe, options: BootstrapOptions): Plan {
  const requested = (recipe.release ?? DEFAULT_RELEASE).toLowerCase();
  const release = findRelease(requested);
  const variant = findVariant(recipe.variant ?? DEFAULT_VARIANT).name;
  const arch = recipe.arch ?? debianArch();
  checkArch(arch);
  const components = recipe.components?.length ? recipe.components : ['main'];
  for (const c of components) if (!COMPONENT.test(c)) throw new UsageError(`invalid component \`${c}\``, { hint: 'components are names like main, contrib, non-free, non-free-firmware' });
  for (const [flag, list] of [['--include', recipe.include], ['--exclude', recipe.exclude]] as const) {
    for (const n of list ?? []) if (!PACKAGE_NAME.test(n)) throw new UsageError(`invalid package name \`${n}\` in ${flag}`, { hint: 'Debian package names use lowercase letters, digits, ".", "+" and "-"' });
  }
  if (recipe.mirror !== undefined && !isArchiveUrl(recipe.mirror)) {
    throw new UsageError(`invalid mirror \`${recipe.mirror}\``, { hint: 'use an http://, https:// or file:// URL of a Debian archive, e.g. http://<mirror>/debian' });
  }
  const mirrors = chooseMirrors({ mirror: recipe.mirror });
  if (recipe.keyring && !existsSync(recipe.keyring)) throw new UsageError(`cannot read keyring \`${recipe.keyring}\`: no such file`);
  // An alias follows the archive (the Release file says what `stable` is today); a codename or number is pinned.
  const requestedSuite = ['stable', 'oldstable', 'testing', 'unstable'].includes(requested) ? requested : release.codename;
  return {
    requested: requestedSuite, release, variant, arch, mirrors, components,
    include: recipe.include ?? [], exclude: recipe.exclude ?? [],
    keyringFile: recipe.keyring ?? bundledKeyring(), customKeyring: !!recipe.keyring,
    noVerify: !!recipe.noVerify, updates: recipe.updates !== false, ignoreValidUntil: !!options.ignoreValidUntil,
  };
}

/**
 * The bundled Debian archive keyring. DEBIAN_KEYRING is right for the
 * sources and dist/recipes; from the CLI bundle (dist/cli) the file is found
 * by walking up to the checkout's or package's recipes/keys.
 */
function bundledKeyring(): string {
  if (existsSync(DEBIAN_KEYRING)) return DEBIAN_KEYRING;
  const name = basename(DEBIAN_KEYRING);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'recipes/keys', name);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new NsboxError(`cannot find the bundled Debian archive keyring (${name})`, { hint: 'reinstall nsbox, or pass --keyring FILE' });
}

/** dpkg runs inside the tree: the tree's architecture must execute here. */
function checkArch(arch: string): void {
  if (!(arch in QEMU)) throw new UsageError(`unknown architecture \`${arch}\``, { hint: `known: ${Object.keys(QEMU).join(', ')}` });
  const host = debianArch();
  if (arch === host || (host === 'amd64' && arch === 'i386') || (host === 'arm64' && arch === 'armhf')) return;
  if (existsSync(`/proc/sys/fs/binfmt_misc/qemu-${QEMU[arch]}`)) return;
  throw new UsageError(`cannot bootstrap ${arch} on this ${host} host: the tree's own dpkg must run here`, {
    hint: `register a qemu-user binfmt handler for ${QEMU[arch]} (qemu-user-static), or bootstrap ${host}`,
  });
}

class DebianEngine implements Engine {
  readonly summary: RecipeSummary & { variant: string };
  #plan: Plan;
  #universe?: Universe;
  #suites: SuiteSource[] = [];
  #bases = new Map<string, string>();
  /** The security archive that served the security suite (none: left out). */
  #security?: string;
  #order?: { essential: PackageInfo[]; rest: PackageInfo[] };
  /** Package files by name, as they land during the download phase. */
  #files = new Arrivals<string, string>();
  #unpacking?: Promise<string>;
  /** Essential packages extracted so far, and whether the unpack phase (whose progress it is) has begun. */
  #unpacked = 0;
  #unpackPhase = false;
  #diverted: string[] = [];
  #stageCache: boolean;
  #stageKey?: string;
  #restored = false;
  #plainRest?: Promise<void>;

  constructor(plan: Plan, stageCache: boolean) {
    this.#plan = plan;
    this.#stageCache = stageCache;
    this.summary = { distribution: 'debian', release: plan.release.codename, arch: plan.arch, variant: plan.variant, mirror: plan.mirrors.mirror };
    if (plan.include.length) this.summary.include = plan.include;
    if (plan.exclude.length) this.summary.exclude = plan.exclude;
  }

  async index(ctx: EngineContext): Promise<string> {
    const p = this.#plan;
    if (p.noVerify) ctx.log('warn', 'signature checks are OFF (--no-verify): anyone between you and the mirror can change what gets installed');
    const keyring: Keyring | undefined = p.noVerify ? undefined : await loadKeyringFiles([p.keyringFile]);
    const u = new Universe(p.arch);
    const common = { components: p.components, keyring, noVerify: p.noVerify, ignoreValidUntil: p.ignoreValidUntil, signal: ctx.signal };
    const hintNoUpdates = (err: unknown) => {
      if (err instanceof NsboxError && !err.hint?.includes('--no-updates')) {
        Object.defineProperty(err, 'hint', { value: `${err.hint ? `${err.hint}; ` : ''}or pass --no-updates to leave out the updates and security suites` });
      }
      return err;
    };
    const load = async (s: SuiteSource): Promise<LoadedSuite | undefined> => {
      if (s.archive === 'security') return this.#loadSecurity(ctx, s, common, u, hintNoUpdates);
      this.#bases.set(s.suite, p.mirrors.mirror);
      try {
        return await loadSuite(ctx.http, ctx.cache, { base: p.mirrors.mirror, suite: s.suite, ...common }, u);
      } catch (err) {
        throw s.suite !== p.requested ? hintNoUpdates(err) : err;
      }
    };
    let loaded: Awaited<ReturnType<typeof loadSuite>>[];
    if (p.requested === p.release.codename) {
      // A codename: its suites are known, so they all load at once.
      this.#suites = suitesFor(p.release, { updates: p.updates });
      loaded = (await Promise.all(this.#suites.map(load))).filter((l): l is LoadedSuite => !!l);
    } else {
      // An alias (stable, testing, …): the archive's Release says which release it is today, and so
      // which -updates and -security suites go with it (by codename: alias suites can be stale on mirrors).
      const main = (await load({ suite: p.requested, archive: 'main' }))!;
      const release = releaseFromArchive(p.requested, main.trusted.release);
      this.#suites = suitesFor(release, { updates: p.updates });
      this.#bases.set(release.codename, p.mirrors.mirror);
      loaded = [main, ...(await Promise.all(this.#suites.slice(1).map(load))).filter((l): l is LoadedSuite => !!l)];
    }
    this.summary.release = releaseFromArchive(p.requested, loaded[0].trusted.release).codename;
    this.#universe = u;
    const n = loaded.reduce((sum, l) => sum + l.packages, 0);
    return `${this.#suites.map((s) => s.suite).join(', ')}: ${formatCount(n)} packages`;
  }

  /**
   * The security suite from the first candidate archive that has it. One
   * that does not answer or has no such suite gives way to the next; a bad
   * signature never does. None left: the suite is left out with a warning
   * (a mirror or proxy of the main archive alone still bootstraps).
   */
  async #loadSecurity(
    ctx: EngineContext, s: SuiteSource, common: Omit<SuiteRequest, 'base' | 'suite'>, u: Universe, hint: (e: unknown) => unknown,
  ): Promise<LoadedSuite | undefined> {
    const tried: string[] = [];
    for (const base of this.#plan.mirrors.security) {
      try {
        const loaded = await loadSuite(ctx.http, ctx.cache, { base, suite: s.suite, ...common }, u);
        this.#bases.set(s.suite, base);
        this.#security = base;
        return loaded;
      } catch (err) {
        if (!(err instanceof NetworkError) || ctx.signal?.aborted) throw hint(err);
        tried.push(`${base}: ${err.message.replace(/^cannot download `[^`]*`: /, '')}`);
      }
    }
    this.#suites = this.#suites.filter((x) => x !== s);
    ctx.log('warn', tried.length
      ? `leaving out ${s.suite}: no security archive serves it (${tried.join('; ')}); the tree gets no security updates until its apt sources name one`
      : `leaving out ${s.suite}: no security archive is known for mirror ${this.#plan.mirrors.mirror} (the host's apt sources name none); the tree gets no security updates until its apt sources name one`);
    return undefined;
  }

  async resolve(ctx: EngineContext): Promise<Selection> {
    const p = this.#plan;
    const u = this.#universe!;
    const sel = selectionFor(p.variant, p.release);
    const r = resolve(u, { rule: sel.rule, include: [...sel.include, ...p.include], exclude: [...sel.exclude, ...p.exclude] });
    for (const w of r.warnings) ctx.log('warn', w);
    const order = installOrder(r.packages, p.arch);
    this.#order = order;
    // essential packages first, in extraction order: their unpacking starts while the rest downloads
    const items: FetchItem[] = [...order.essential, ...order.rest].map((pkg) => this.#item(pkg));
    const packages: Record<string, string> = {};
    for (const pkg of r.packages) packages[pkg.name] = pkg.version;
    // The index (tens of MB for a full suite) is not needed any more.
    this.#universe = undefined;
    return { items, packages, detail: `${r.packages.length} packages (${order.essential.length} essential)` };
  }

  #item(pkg: PackageInfo): FetchItem {
    const base = this.#bases.get(pkg.origin) ?? this.#plan.mirrors.mirror;
    return { url: archiveUrl(base, pkg.filename), digest: pkg.sha256, size: pkg.size, name: basename(pkg.filename) };
  }

  /** A package file is in the cache, verified: the essential set's extraction may start (or go on). */
  landed(ctx: EngineContext, _index: number, file: FetchResult): void {
    this.#files.arrive(file.item.name, file.path);
    if (!this.#unpacking) {
      this.#unpacking = this.#unpackAsTheyLand(ctx);
      this.#unpacking.catch(() => {}); // reported by unpack()
    }
  }

  async unpack(ctx: EngineContext, files: FetchResult[]): Promise<string> {
    for (const f of files) if (!this.#files.get(f.item.name)) this.landed(ctx, 0, f);
    this.#unpackPhase = true;
    ctx.emit({ type: 'count', phase: 'unpack', done: this.#unpacked, total: this.#order!.essential.length });
    return await this.#unpacking!;
  }

  /** The package's verified file, once it has landed. */
  #pathOf(pkg: PackageInfo): Promise<string> {
    return this.#files.wait(basename(pkg.filename));
  }

  async #unpackAsTheyLand(ctx: EngineContext): Promise<string> {
    const { dir } = ctx;
    const essential = this.#order!.essential;
    if (this.#stageCache) {
      this.#stageKey = stageKey({
        stage: `debian-essential-${STAGE_VERSION}`, arch: this.#plan.arch, core: CORE_FIRST,
        packages: essential.map((p) => [p.name, p.version, p.sha256]),
        // the package scripts see it: a stage built under one date is not the stage of another
        sourceDateEpoch: sourceDateEpoch(),
      });
      let meta: StageMeta | undefined;
      try {
        meta = await restoreStage<StageMeta>(ctx.cache, this.#stageKey, dir);
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        ctx.log('warn', `the cached essential stage is unusable (${(err as Error).message}); installing the essential set with dpkg`);
        await dropStage(ctx.cache, this.#stageKey);
        await emptyTree(dir);
      }
      if (meta) {
        this.#diverted = meta.diverted;
        this.#restored = true;
        // The remaining packages are re-encoded for dpkg while nothing else needs the second core.
        this.#plainRest = this.#writePlainRest(ctx);
        return `essential stage (${essential.length} packages) restored from the cache`;
      }
    }
    await prepareTree(dir, this.#plan.arch);
    await mkdir(join(dir, PLAIN_IN_TREE), { recursive: true });
    const writer = new TreeWriter(dir);
    const starters: string[] = [];
    await extractDebs(essential.map((p) => this.#pathOf(p)), writer, {
      names: essential.map((p) => basename(p.filename)),
      plainDests: essential.map((p) => join(dir, this.#plainPath(p))),
      signal: AbortSignal.any([this.#files.signal, ...(ctx.signal ? [ctx.signal] : [])]),
      skip: (path) => NOT_NEEDED_TO_INSTALL.test(path),
      onPackage: (i, written) => {
        for (const w of written) if (SERVICE_STARTERS.test(w)) starters.push(w);
        this.#unpacked++;
        if (this.#unpackPhase) ctx.emit({ type: 'count', phase: 'unpack', done: this.#unpacked, total: essential.length, current: essential[i].name });
      },
    });
    await writer.finish();
    ctx.signal?.throwIfAborted();
    this.#diverted = await preventServices(dir, starters);
    // Runs while dpkg installs the essential set (dpkg uses one core).
    this.#plainRest = this.#writePlainRest(ctx);
    return `${essential.length} essential packages extracted`;
  }

  /**
   * Where dpkg finds a package inside the tree: a copy whose data member is
   * stored uncompressed (bootstrap/apt/deb.ts, PlainDeb), written from the
   * verified file, so dpkg's unpacking spends no time in xz.
   */
  #plainPath(pkg: PackageInfo): string {
    return `${PLAIN_IN_TREE}/${basename(pkg.filename)}`;
  }

  async #writePlainRest(ctx: EngineContext): Promise<void> {
    await mkdir(join(ctx.dir, PLAIN_IN_TREE), { recursive: true });
    const rest = [...this.#order!.rest];
    const worker = async () => {
      for (let p = rest.shift(); p; p = rest.shift()) {
        ctx.signal?.throwIfAborted();
        await writePlainDeb(await this.#pathOf(p), join(ctx.dir, this.#plainPath(p)), basename(p.filename));
      }
    };
    await Promise.all([worker(), worker()]);
  }

  async configure(ctx: EngineContext): Promise<string> {
    const { dir } = ctx;
    const { essential, rest } = this.#order!;
    const inTree = (pkg: PackageInfo) => this.#plainPath(pkg);
    this.#plainRest?.catch(() => {});
    const batches = preDependsBatches(rest, this.#plan.arch);
    const dpkg = 'dpkg --force-unsafe-io --force-confold';
    const script = (what: string, lines: string[]) =>
      ['#!/bin/sh', `# nsbox bootstrap: ${what} with the tree's own dpkg`, 'set -e', 'step() { echo "# nsbox: $(date +%s.%N | cut -c1-14) $*"; }', ...lines, ''].join('\n');
    const args = (pkgs: PackageInfo[]) => pkgs.map(inTree).join(' \\\n  ');
    const total = (essential.length * (this.#restored ? 0 : 1) + rest.length) * 2;
    let done = 0;
    const run = (scriptPath: string, what: string) =>
      runInTree(dir, ['/bin/sh', scriptPath], {
        logFile: join(dir, LOG_IN_TREE),
        what,
        signal: ctx.signal,
        onLine: (line) => {
          const m = /^(Unpacking|Setting up) (\S+)/.exec(line);
          if (m) ctx.emit({ type: 'count', phase: 'configure', done: ++done, total, current: m[2].replace(/:.*$/, '') });
        },
      });

    let snapshot: Snapshot | undefined;
    if (!this.#restored) {
      const core = CORE_FIRST.map((n) => essential.find((p) => p.name === n)).filter((p): p is PackageInfo => !!p);
      const ordered = [...core, ...essential.filter((p) => !core.includes(p))];
      await writeFile(join(dir, ESSENTIAL_SCRIPT), script('install the essential set', ['step essential', `${dpkg} --force-depends --install \\\n  ${args(ordered)}`]), { mode: 0o755 });
      await run(ESSENTIAL_SCRIPT, 'install the essential packages with dpkg');
      await rm(join(dir, ESSENTIAL_SCRIPT));
      if (this.#stageKey) {
        // Listed (and /etc, /var read) now; /usr is read while the remaining packages install.
        const t0 = Date.now();
        snapshot = await beginSnapshot(ctx.cache, this.#stageKey, dir, {
          meta: { diverted: this.#diverted } satisfies StageMeta, liveRoots: ['usr'], exclude: [LOG_IN_TREE, MARKER, PLAIN_IN_TREE.slice(1)],
        });
        ctx.log('debug', `essential stage listed in ${Date.now() - t0} ms`);
      }
    }
    const lines = batches.map((b, i) => `step batch ${i + 1}\n${dpkg} --install \\\n  ${args(b)}`);
    lines.push('step audit', 'problems=$(dpkg --audit)', 'if [ -n "$problems" ]; then echo "dpkg --audit:"; echo "$problems"; exit 1; fi');
    await writeFile(join(dir, REST_SCRIPT), script('install the remaining packages', lines), { mode: 0o755 });
    try {
      await this.#plainRest;
    } catch (err) {
      await snapshot?.abort();
      throw err;
    }
    try {
      const t0 = Date.now();
      const [, stored] = await Promise.all([
        run(REST_SCRIPT, 'install the remaining packages with dpkg').then(() => ctx.log('debug', `remaining packages installed in ${Date.now() - t0} ms`)),
        snapshot?.finish().then((ok) => (ctx.log('debug', `essential stage ${ok ? 'stored' : 'not stored'} after ${Date.now() - t0} ms`), ok)),
      ]);
      if (snapshot && !stored) ctx.log('debug', 'essential stage not cached: the tree changed while it was read');
    } catch (err) {
      await snapshot?.abort();
      throw err;
    }
    const runs = (this.#restored ? 0 : 1) + batches.length;
    return `${essential.length + rest.length} packages installed by dpkg (${runs} dpkg runs${this.#restored ? ', essential stage from the cache' : ''})`;
  }

  async finish(ctx: EngineContext): Promise<string> {
    const { dir } = ctx;
    const p = this.#plan;
    await allowServices(dir, this.#diverted);
    for (const f of [ESSENTIAL_SCRIPT, REST_SCRIPT, PLAIN_IN_TREE, ...(process.env.NSBOX_KEEP_LOG ? [] : [LOG_IN_TREE])]) await rm(join(dir, f), { recursive: true, force: true });
    let sources = renderSources({ mirror: p.mirrors.mirror, security: this.#security }, this.#suites, p.components);
    if (p.customKeyring) {
      // The tree's apt trusts what this bootstrap trusted.
      const armored = (await readFile(p.keyringFile)).subarray(0, 64).toString('latin1').includes('-----BEGIN PGP');
      const dest = `/etc/apt/keyrings/nsbox-bootstrap.${armored ? 'asc' : 'gpg'}`;
      await mkdir(join(dir, 'etc/apt/keyrings'), { recursive: true, mode: 0o755 });
      await copyFile(p.keyringFile, join(dir, dest));
      sources = sources.replaceAll('Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg', `Signed-By: ${dest}`);
    }
    await writeFile(join(dir, 'etc/apt/sources.list.d/debian.sources'), sources, { mode: 0o644 });
    await cleanTree(dir, hostnameFor(dir));
    return `apt sources: ${this.#suites.map((s) => s.suite).join(', ')}`;
  }

  async dispose(ctx: EngineContext, failed: boolean): Promise<void> {
    // a failed download leaves packages that never land: stop what waits for them
    this.#files.stop(new AbortedError('stopped'));
    await this.#unpacking?.catch(() => {});
    await this.#plainRest?.catch(() => {});
    // A failed build keeps its log and script for the user to read; the tree stays marked incomplete.
    if (!failed) return;
    try {
      readFileSync(join(ctx.dir, LOG_IN_TREE));
      ctx.log('info', `the dpkg log is ${join(ctx.dir, LOG_IN_TREE)}`);
    } catch {
      /* no log yet */
    }
  }
}

/**
 * Splits packages (in install order) into dpkg calls: a package goes into
 * the first call after every package it Pre-Depends on among `pkgs`
 * (those must be configured before it can be unpacked).
 *
 * @example
 * preDependsBatches(rest, 'amd64').length // 1 for minbase
 */
export function preDependsBatches(pkgs: PackageInfo[], arch: string): PackageInfo[][] {
  const level = new Map<string, number>();
  const visiting = new Set<string>();
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const levelOf = (p: PackageInfo): number => {
    const known = level.get(p.name);
    if (known !== undefined) return known;
    if (visiting.has(p.name)) return 0; // a Pre-Depends cycle: dpkg will have to cope, as debootstrap's does
    visiting.add(p.name);
    let l = 0;
    // Pre-Depends must be configured in an earlier batch; Depends only in the
    // same batch or an earlier one (dpkg --install configures a batch in
    // dependency order), else a package waits for a dependency that a later
    // batch brings (trixie's openssh-server → systemd).
    for (const [field, step] of [['Pre-Depends', 1], ['Depends', 0]] as const) {
      for (const clause of relations(p, field)) {
        for (const rel of clause) {
          if (!appliesTo(rel, arch)) continue;
          const target = byName.get(rel.name) ?? pkgs.find((q) => matches(rel, q, arch));
          if (target && target !== p && matches(rel, target, arch)) {
            l = Math.max(l, levelOf(target) + step);
            break;
          }
        }
      }
    }
    visiting.delete(p.name);
    level.set(p.name, l);
    return l;
  };
  const out: PackageInfo[][] = [];
  for (const p of pkgs) (out[levelOf(p)] ??= []).push(p);
  return out.filter((b) => b?.length);
}

/** Empties a tree being built, keeping its incomplete-marker. */
async function emptyTree(dir: string): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  for (const n of await readdir(dir)) if (n !== MARKER) await rm(join(dir, n), { recursive: true, force: true });
}

/** The hostname of a new tree: its directory's name, made a valid host name. */
export function hostnameFor(dir: string): string {
  const h = basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return h || 'debian';
}
