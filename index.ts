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
