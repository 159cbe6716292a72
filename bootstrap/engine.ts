/**
 * The contract between the shared bootstrap driver (bootstrap/index.ts) and
 * a package-format engine (bootstrap/apt/engine.ts, later
 * bootstrap/rpm/engine.ts). The driver owns what every distribution does the
 * same way: validation order, the tree-state marker, the phase events, the
 * HTTP client and cache, downloads, post steps, and marking the tree
 * complete. An engine only says how its format reads an index, resolves,
 * unpacks and lets the tree's own package manager configure.
 */
import type { Cache } from './cache.js';
import type { FetchItem, FetchResult } from './fetch.js';
import type { HttpClient } from './http.js';
import type { ProgressSink } from './progress.js';
import type { BootstrapOptions, Recipe } from './recipe.js';
import type { RecipeSummary } from './tree-state.js';

/** What every phase of an engine gets. */
export interface EngineContext {
  /** The target directory (absolute). */
  dir: string;
  http: HttpClient;
  cache: Cache;
  signal?: AbortSignal;
  emit: ProgressSink;
  /** Shorthand for a log event. */
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
}

/** The packages an engine chose, ready to download. */
export interface Selection {
  /** Files to fetch into the cache, in the order the engine wants them back. */
  items: FetchItem[];
  /** Installed set, name → version (the BootstrapResult's `packages`). */
  packages: Record<string, string>;
  /** Short text for the resolve phase, e.g. "89 packages (42 essential)". */
  detail: string;
}

/**
 * One bootstrap in progress, created by an engine module's `createEngine()`.
 * Creation validates the recipe (no network, nothing written), so bad input
 * fails before the target directory is touched.
 */
export interface Engine {
  /** The normalized recipe: release codename, arch, variant, mirror (recorded in the tree). */
  readonly summary: RecipeSummary & { variant: string };
  /** Fetches and verifies the repository index. Returns a detail line. */
  index(ctx: EngineContext): Promise<string>;
  /** Resolves the package set (unknown `--include` names fail here). */
  resolve(ctx: EngineContext): Promise<Selection>;
  /**
   * Called during the download phase as each file lands in the cache,
   * verified (`index` into the selection's items), so that an engine can
   * start unpacking while the rest downloads. Work started here must not
   * throw out of it: unpack() reports its failures, and dispose() stops it
   * when the run fails first.
   */
  landed?(ctx: EngineContext, index: number, file: FetchResult): void;
  /** Writes the verified files into the tree (the target is marked incomplete by now). */
  unpack(ctx: EngineContext, files: FetchResult[]): Promise<string>;
  /** Lets the tree's own package manager install and configure everything. */
  configure(ctx: EngineContext): Promise<string>;
  /** Repository configuration for the finished tree, identity files, cleanup. */
  finish(ctx: EngineContext): Promise<string>;
  /** Called once when the run ends, successful or not (undo temporary state, close files). */
  dispose?(ctx: EngineContext, failed: boolean): Promise<void>;
}

/** What an engine module exports. */
export interface EngineModule {
  createEngine(recipe: Recipe, options: BootstrapOptions): Promise<Engine>;
}
