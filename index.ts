/**
 * nsbox as a library, for provisioning scripts:
 *
 * ```js
 * import { bootstrap, run, recipes } from 'nsbox';
 *
 * const base = recipes.debian({ release: 'bookworm', variant: 'boot' });
 * await bootstrap(recipes.extend(base, { post: [{ kind: 'sshd', port: 2222, authorizedKeys: './id.pub' }] }), '/srv/web', {
 *   onProgress: (e) => { if (e.type === 'phase') console.log(e.phase, e.status); },
 * });
 * const code = await run('/srv/web', { command: ['cat', '/etc/os-release'] });
 * ```
 *
 * Every failure is an NsboxError subclass whose `message` is the line the
 * CLI prints (RecipeError for a bad recipe field, NetworkError, VerifyError,
 * PostStepError, AbortedError when the AbortSignal fired); `hint` says what
 * to do about it.
 */
import type { BootstrapOptions, BootstrapResult, Recipe } from './bootstrap/recipe.js';
import { prepareRecipe } from './recipes/index.js';

export { run } from './runtime/index.js';
export type { RunApiOptions as RunOptions, ConsoleMode } from './runtime/index.js';
export { recipes, extend, RecipeError, PostStepError, DEFAULT_SSH_PORT } from './recipes/index.js';
export type { Recipe, PostStep, Distribution, BootstrapOptions, BootstrapResult } from './bootstrap/recipe.js';
export type { ProgressEvent, PhaseEvent, DownloadEvent, ItemEvent, CountEvent, LogEvent, Phase } from './bootstrap/progress.js';
export { NsboxError, UsageError, SetupError, NetworkError, VerifyError, AbortedError, formatError } from './errors.js';
export type { ExportOptions, ExportResult } from './bootstrap/image/export.js';
export type { ImportOptions, ImportResult } from './bootstrap/image/import.js';

/**
 * Writes a tree to a tar, squashfs or OCI image, chosen by `out`'s name
 * (`x.tar.zst`, `x.squashfs`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`).
 *
 * @example
 * await exportTree('/srv/web', 'oci-archive:/tmp/web.tar:v1', { cmd: ['/usr/sbin/nginx', '-g', 'daemon off;'] });
 */
export async function exportTree(dir: string, out: string, options: import('./bootstrap/image/export.js').ExportOptions = {}): Promise<import('./bootstrap/image/export.js').ExportResult> {
  return (await import('./bootstrap/image/export.js')).exportTree(dir, out, options);
}

/**
 * Unpacks a tar or OCI image into /var/lib/machines/NAME (run it with `run` and `-M`, or by its path).
 *
 * @example
 * const { path } = await importImage('oci:/tmp/debian:12', 'debian12');
 */
export async function importImage(source: string, name?: string, options: import('./bootstrap/image/import.js').ImportOptions = {}): Promise<import('./bootstrap/image/import.js').ImportResult> {
  return (await import('./bootstrap/image/import.js')).importImage(source, name, options);
}

/**
 * Builds a tree from a recipe into `dir`. The recipe is validated first
 * (a RecipeError names the field, before any download) and the packages
 * its post steps need are added; then the engine runs index → resolve →
 * download → unpack → configure → finish (post steps) and reports each
 * as a typed ProgressEvent. `signal` cancels it (AbortedError; the tree
 * stays marked incomplete and a rerun starts over with the cache).
 *
 * @example
 * const ac = new AbortController();
 * const result = await bootstrap(recipes.debian({ variant: 'boot' }), '/srv/deb', { signal: ac.signal, onProgress: console.log });
 * console.log(Object.keys(result.packages).length, 'packages');
 */
export async function bootstrap(recipe: Recipe, dir: string, options: BootstrapOptions = {}): Promise<BootstrapResult> {
  const prepared = prepareRecipe(recipe);
  const engine = await import('./bootstrap/index.js');
  return engine.bootstrap(prepared, dir, options);
}
