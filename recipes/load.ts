/**
 * Loading a user's recipe file (`nsbox bootstrap ./web.recipe.mjs /srv/web`):
 * an ES module (plain JavaScript works) whose default export is a Recipe,
 * or a function that receives nsbox's recipe helpers and returns one (so a
 * recipe file needs no import that must resolve from where it lives):
 *
 * ```js
 * // web.recipe.mjs
 * export default ({ recipes, extend }) => extend(recipes.debian({ release: 'bookworm', variant: 'boot' }), {
 *   post: [{ kind: 'hostname', hostname: 'web1' }, { kind: 'sshd', port: 2222, authorizedKeys: '/root/.ssh/id_ed25519.pub' }],
 * });
 * ```
 */
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.js';
import type { Recipe } from '../bootstrap/recipe.js';
import { validateRecipe } from './validate.js';

/** Whether a `bootstrap` argument names a recipe file rather than a distribution. */
export function isRecipePath(arg: string): boolean {
  return arg.includes('/') || /\.(mjs|cjs|js|ts|mts)$/.test(arg);
}

/**
 * Imports and validates a recipe file. Throws a UsageError (unreadable
 * file, import failure, bad default export) or a RecipeError (a field).
 *
 * @example
 * const recipe = await loadRecipeFile('./web.recipe.mjs');
 */
export async function loadRecipeFile(path: string, helpers: Record<string, unknown> = {}): Promise<Recipe> {
  const full = resolve(path);
  try {
    if (!statSync(full).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    accessSync(full, constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read recipe file \`${path}\`: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'not a regular file' : 'permission denied'}`, {
      hint: 'pass a distribution (debian, fedora) or the path of a recipe module (.mjs)',
    });
  }
  if (/\.(ts|mts)$/.test(full)) {
    throw new UsageError(`cannot load recipe file \`${path}\`: TypeScript recipes must be compiled first`, { hint: 'write the recipe as .mjs, or import it from a provisioning script' });
  }
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(full).href);
  } catch (e) {
    const msg = String((e as Error)?.message ?? e).split('\n')[0];
    throw new UsageError(`cannot load recipe file \`${path}\`: ${msg}`, { hint: 'the file must be an ES module whose default export is a recipe' });
  }
  let value = mod.default;
  if (typeof value === 'function') {
    const api = helpers.recipes ? helpers : await import('./index.js');
    value = await (value as (h: unknown) => unknown)(api);
  }
  if (value === undefined) throw new UsageError(`cannot load recipe file \`${path}\`: it has no default export`, { hint: 'add `export default { distribution: "debian", ... }`' });
  return validateRecipe(value, { source: path });
}
