/**
 * Recipes for provisioning scripts and recipe files: the built-ins as
 * functions that take overrides, `extend` to derive one recipe from
 * another, and validation, loading and post-step helpers.
 *
 * @example
 * import { recipes, extend } from 'nsbox';
 * const base = recipes.debian({ release: 'bookworm', variant: 'boot' });
 * const web = extend(base, { post: [{ kind: 'sshd', port: 2222, authorizedKeys: './id.pub' }] });
 */
import type { PostStep, Recipe } from '../bootstrap/recipe.js';
import { loadRecipeFile } from './load.js';
import { packagesFor, runPostSteps } from './post.js';
import { validateRecipe } from './validate.js';

export type { PostStep, Recipe, Distribution } from '../bootstrap/recipe.js';
export { RecipeError, validateRecipe } from './validate.js';
export { PostStepError, packagesFor, runPostSteps, DEFAULT_SSH_PORT, type PostContext } from './post.js';
export { loadRecipeFile, isRecipePath } from './load.js';

/** Recipe fields other than the distribution. */
export type RecipeOverrides = Partial<Omit<Recipe, 'distribution'>>;

/**
 * The built-in Debian recipe with `overrides` applied (release, variant,
 * mirror… default to the engine's: current stable, minbase, the host's mirror).
 *
 * @example
 * recipes.debian({ release: 'bookworm', variant: 'boot' })
 */
export function debian(overrides: RecipeOverrides = {}): Recipe {
  return { distribution: 'debian', ...overrides };
}

/**
 * The built-in Fedora recipe with `overrides` applied.
 *
 * @example
 * recipes.fedora({ release: '40', variant: 'boot' })
 */
export function fedora(overrides: RecipeOverrides = {}): Recipe {
  return { distribution: 'fedora', ...overrides };
}

const union = (a?: string[], b?: string[]) => (a || b ? [...new Set([...(a ?? []), ...(b ?? [])])] : undefined);

/**
 * A new recipe from `base` and `overrides`: fields of `overrides` win,
 * except `include` and `exclude` (merged) and `post` (the base's steps,
 * then the overrides'). Neither argument is modified.
 *
 * @example
 * const db = extend(base, { include: ['postgresql'], post: [{ kind: 'user', name: 'app' }] });
 */
export function extend(base: Recipe, overrides: RecipeOverrides & { distribution?: Recipe['distribution'] }): Recipe {
  const out: Recipe = { ...base, ...overrides };
  const include = union(base.include, overrides.include);
  const exclude = union(base.exclude, overrides.exclude);
  const post: PostStep[] | undefined = base.post || overrides.post ? [...(base.post ?? []), ...(overrides.post ?? [])] : undefined;
  if (include) out.include = include;
  if (exclude) out.exclude = exclude;
  if (post) out.post = post;
  for (const k of Object.keys(out) as (keyof Recipe)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/**
 * A recipe ready for the engine: validated (RecipeError naming the field,
 * before any download) and with the packages its post steps need added to
 * `include` (openssh-server for sshd, locales for a locale, …).
 *
 * @example
 * prepareRecipe(recipes.debian({ post: [{ kind: 'sshd' }] })).include // ['openssh-server', 'systemd-sysv']
 */
export function prepareRecipe(recipe: Recipe, opts: { source?: string } = {}): Recipe {
  const r = validateRecipe(recipe, opts);
  const extra = packagesFor(r.post, r.distribution).filter((p) => !r.exclude?.includes(p));
  return extra.length ? { ...r, include: union(r.include, extra) } : { ...r };
}

/** Everything above as one object: `recipes.debian()`, `recipes.extend()`, … */
export const recipes = {
  debian,
  fedora,
  extend,
  validate: validateRecipe,
  prepare: prepareRecipe,
  load: loadRecipeFile,
  packagesFor,
  runPostSteps,
};
