/**
 * The library entry: `bootstrap(recipe, dir, options)` builds a finished
 * tree. This is the one place the phases run, in order, with their
 * progress events: index → resolve → download → unpack → configure →
 * finish. What is the same for every distribution lives here (validation
 * first, the target's state, the HTTP client and cache, verified parallel
 * downloads, post steps, syncing, the completion record); what a package
 * format does lives in its engine (bootstrap/apt/engine.ts; an RPM engine
 * plugs in the same way), loaded lazily so only the chosen one loads.
 *
 * Atomicity: DIR is checked before any network access (a foreign or
 * finished directory is refused), and marked incomplete before anything is
 * written into it; it is marked complete only after the post steps and a
 * sync. An interrupted or failed run leaves the marker, and the next run of
 * the same command starts over in DIR, reusing every verified download.
 */
import { resolve as resolvePath } from 'node:path';
import { AbortedError, NsboxError, SetupError, UsageError } from '../errors.js';
import { Cache } from './cache.js';
import type { Engine, EngineContext, EngineModule } from './engine.js';
import { fetchAll, type FetchResult } from './fetch.js';
import { HttpClient } from './http.js';
import type { Phase } from './progress.js';
import type { BootstrapOptions, BootstrapResult, Distribution, Recipe } from './recipe.js';
import { beginTree, finishTree, inspectTree } from './tree-state.js';
import { sourceDateEpoch } from './source-date.js';
import { chmod } from 'node:fs/promises';

export type { BootstrapOptions, BootstrapResult, Recipe, PostStep } from './recipe.js';

/** Engines by distribution, loaded lazily (only the chosen one loads; both are in the CLI bundle). */
const ENGINES: Record<Distribution, () => Promise<EngineModule | undefined>> = {
  debian: () => import('./apt/engine.js'),
  fedora: () => import('./rpm/engine.js'),
};

/** The post-step runner (recipes/post.ts), loaded only for recipes that have post steps. */
type PostModule = typeof import('../recipes/post.js');

/** Known distributions (for messages). */
export const DISTRIBUTIONS = Object.keys(ENGINES) as Distribution[];

/**
 * Builds a tree. Resolves with what was installed and how much was
 * downloaded; rejects with an NsboxError (UsageError for bad input,
 * NetworkError, VerifyError, AbortedError when `signal` fired).
 *
 * @example
 * const ac = new AbortController();
 * const result = await bootstrap(
 *   { distribution: 'debian', release: 'trixie', variant: 'minbase', include: ['curl'] },
 *   '/srv/trixie',
 *   { signal: ac.signal, onProgress: (e) => console.log(e) },
 * );
 * result.packages.apt // '3.0.3'
 */
export async function bootstrap(recipe: Recipe, dir: string, options: BootstrapOptions = {}): Promise<BootstrapResult> {
  return (await prepareBootstrap(recipe, dir, options)).run();
}

/** A validated bootstrap, ready to run (see prepareBootstrap). */
export interface PreparedBootstrap {
  /** The normalized recipe (release codename, arch, variant, mirror). */
  summary: Engine['summary'];
  /** Runs the phases; `onProgress` here replaces the one given to prepareBootstrap. */
  run(opts?: { onProgress?: BootstrapOptions['onProgress'] }): Promise<BootstrapResult>;
}

/**
 * Everything that can fail without the network or writing anything: root,
 * the distribution and its engine, the recipe (release, variant, arch,
 * mirror, names), post-step support, the target's state. The CLI calls it
 * before it draws a task list, so bad input is one line.
 *
 * @example
 * const job = await prepareBootstrap({ distribution: 'debian', release: 'potato' }, '/srv/x');
 * // throws UsageError: unknown Debian release `potato` (known releases: bookworm, trixie, …)
 */
export async function prepareBootstrap(recipe: Recipe, dir: string, options: BootstrapOptions = {}): Promise<PreparedBootstrap> {
  const target = resolvePath(dir);
  sourceDateEpoch(); // a malformed SOURCE_DATE_EPOCH fails now, not in the tree's package scripts
  if (process.getuid?.() !== 0) throw new SetupError('cannot bootstrap: nsbox bootstrap needs root (it sets file owners and runs dpkg in namespaces)', { hint: 'run it with sudo' });
  const load = ENGINES[recipe.distribution as Distribution];
  if (!load) throw new UsageError(`unknown distribution \`${recipe.distribution}\``, { hint: `known distributions: ${DISTRIBUTIONS.join(', ')}` });
  const mod = await load();
  if (!mod) throw new UsageError(`cannot bootstrap ${recipe.distribution}: this nsbox has no ${recipe.distribution} engine yet`, { hint: 'known today: debian' });
  let post: PostModule | undefined;
  if (recipe.post?.length) {
    // The steps' own packages (openssh-server for sshd, locales, …) join the package set.
    post = await import('../recipes/post.js');
    const extra = post.packagesFor(recipe.post, recipe.distribution).filter((p) => !(recipe.exclude ?? []).includes(p));
    if (extra.length) recipe = { ...recipe, include: [...new Set([...(recipe.include ?? []), ...extra])] };
  }
  const engine = await mod.createEngine(recipe, options);
  await checkTarget(target, options.force);
  return {
    summary: engine.summary,
    run: (opts = {}) => runPhases(recipe, target, { ...options, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) }, engine, post),
  };
}

async function runPhases(recipe: Recipe, target: string, options: BootstrapOptions, engine: Engine, post: PostModule | undefined): Promise<BootstrapResult> {
  const emit = options.onProgress ?? (() => {});
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => emit({ type: 'log', level, message });
  const cache = new Cache({ dir: options.cacheDir });
  await cache.sweepTemp().catch(() => 0);
  const http = new HttpClient({ onRetry: (r) => log('debug', `retrying ${r.url} in ${r.delayMs} ms (${r.reason})`) });
  const ctx: EngineContext = { dir: target, http, cache, signal: options.signal, emit, log };
  const phase = async <T>(name: Phase, body: () => Promise<T>, detail: (v: T) => string | undefined): Promise<T> => {
    emit({ type: 'phase', phase: name, status: 'start' });
    try {
      options.signal?.throwIfAborted();
      const v = await body();
      options.signal?.throwIfAborted();
      emit({ type: 'phase', phase: name, status: 'done', detail: detail(v) });
      return v;
    } catch (err) {
      const e = normalizeError(err, options.signal, target);
      emit({ type: 'phase', phase: name, status: 'failed', detail: e.message });
      throw e;
    }
  };

  let marked = false;
  let failed = true;
  try {
    await phase('index', () => engine.index(ctx), (d) => d);
    const selection = await phase('resolve', () => engine.resolve(ctx), (s) => s.detail);
    await beginTree(target, engine.summary, { force: options.force });
    marked = true;
    // The tree's root is the container's /: 0755 like every distribution's
    // (a directory made by mkdtemp is 0700, and then no unprivileged service
    // inside — dbus, sshd's privilege separation — can reach anything).
    await chmod(target, 0o755);
    const onFile = engine.landed ? (i: number, f: FetchResult) => engine.landed!(ctx, i, f) : undefined;
    const files = await phase('download', () => fetchAll(selection.items, { http, cache, signal: options.signal, onProgress: emit, onFile }), (r) => {
      const fresh = r.filter((f) => !f.cached);
      return `${fresh.length} downloaded (${formatMiB(fresh.reduce((s, f) => s + (f.item.size ?? 0), 0))}), ${r.length - fresh.length} from the cache`;
    });
    await phase('unpack', () => engine.unpack(ctx, files), (d) => d);
    // What is written so far (downloads, unpacked files) goes to disk while the tree's
    // package manager runs, instead of all at the end in the syncfs before "complete".
    const { syncTree } = await import('./sync.js');
    const flushing = syncTree(target).catch(() => {});
    await phase('configure', () => engine.configure(ctx), (d) => d);
    await flushing;
    await phase(
      'finish',
      async () => {
        const detail = await engine.finish(ctx);
        if (post && recipe.post?.length) {
          await post.runPostSteps(recipe.post, target, { distribution: recipe.distribution, signal: options.signal, log: (line) => log('info', line) });
        }
        await syncTree(target);
        await finishTree(target);
        return detail;
      },
      (d) => d,
    );
    failed = false;
    const fresh = files.filter((f) => !f.cached);
    return {
      dir: target,
      distribution: recipe.distribution,
      release: engine.summary.release,
      arch: engine.summary.arch,
      variant: engine.summary.variant,
      packages: selection.packages,
      downloadedBytes: fresh.reduce((s, f) => s + (f.item.size ?? 0), 0),
      downloadedFiles: fresh.length,
      cachedFiles: files.length - fresh.length,
    };
  } catch (err) {
    throw leftIncomplete(normalizeError(err, options.signal, target), marked ? target : undefined);
  } finally {
    await engine.dispose?.(ctx, failed).catch(() => {});
    await http.close().catch(() => {});
  }
}

/** Refuses, before any download, a target nsbox must not write into. */
async function checkTarget(dir: string, force?: boolean): Promise<void> {
  const s = await inspectTree(dir);
  if (s.kind === 'foreign' && !force) {
    throw new UsageError(`cannot bootstrap into \`${dir}\`: directory is not empty and was not created by nsbox`, { hint: 'choose an empty or new directory, or pass --force to write into it anyway' });
  }
  if (s.kind === 'complete' && !force) {
    throw new UsageError(`cannot bootstrap into \`${dir}\`: it already holds a finished nsbox tree`, { hint: 'remove it first, or pass --force to bootstrap over it' });
  }
  if (s.kind === 'incomplete' && s.running) throw new UsageError(`cannot bootstrap into \`${dir}\`: another nsbox (pid ${s.record?.pid}) is bootstrapping it`);
}

/** Turns whatever failed into an NsboxError with one line a user can act on (anything else is a bug, kept as is). */
function normalizeError(err: unknown, signal: AbortSignal | undefined, dir: string): Error {
  if (signal?.aborted && !(err instanceof AbortedError)) return new AbortedError('interrupted', { cause: err });
  if (err instanceof NsboxError) {
    if (err.code === 'no-space') return err;
    if (hasCode(err, 'ENOSPC')) return new NsboxError(`cannot bootstrap into \`${dir}\`: no space left on device`, { code: 'no-space', cause: err, hint: 'free some space (or choose another directory) and rerun' });
    return err;
  }
  if (hasCode(err, 'ENOSPC')) return new NsboxError(`cannot bootstrap into \`${dir}\`: no space left on device`, { code: 'no-space', cause: err, hint: 'free some space (or choose another directory) and rerun' });
  if (hasCode(err, 'EACCES') || hasCode(err, 'EROFS')) return new NsboxError(`cannot write into \`${dir}\`: ${(err as Error).message}`, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function hasCode(err: unknown, code: string): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, i = 0; e && i < 8; e = e.cause as typeof e, i++) if (e.code === code) return true;
  return false;
}

/** Says in the error that DIR is left incomplete and how to go on. */
function leftIncomplete(err: Error, dir: string | undefined): Error {
  if (!dir || !(err instanceof NsboxError)) return err;
  const note = `\`${dir}\` is left marked incomplete; rerun the same command to start it over (downloads are kept in the cache)`;
  if (err instanceof AbortedError) return new AbortedError(`interrupted: ${note}`, { cause: err.cause ?? err });
  Object.defineProperty(err, 'hint', { value: err.hint ? `${err.hint}; ${note}` : note, configurable: true });
  return err;
}

function formatMiB(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
