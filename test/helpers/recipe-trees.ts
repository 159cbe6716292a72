/**
 * Debian trees for recipe tests: variant `boot` plus the packages that post
 * steps need (OpenSSH server, locales, tzdata), root's password untouched.
 * Built and cached like every test tree (test/helpers/debian-trees.ts: nsbox's
 * own engine, NSBOX_TEST_TREES=mmdebstrap for mmdebstrap).
 */
import { bootTree } from './debian-trees.js';

/** What post steps install on top of the boot tree. */
export const RECIPE_PACKAGES = ['openssh-server', 'locales', 'tzdata'];

/** A fresh, untouched copy of a bootable `suite` tree with openssh-server and locales (no root password). */
export function recipeTree(suite: string): Promise<string> {
  return bootTree(suite, null, RECIPE_PACKAGES);
}
