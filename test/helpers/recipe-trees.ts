/**
 * Debian trees for recipe tests: the boot tree of debian-trees.ts plus the
 * packages that post steps need (OpenSSH server, locales), built once per
 * suite with mmdebstrap from the host's mirror and cached as a tarball under
 * /var/cache/nsbox/test-trees (refreshed weekly); each test gets a fresh copy.
 * Once nsbox's own Debian engine exists, `engineTree` builds with it instead.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOOT_PACKAGES, hostMirror } from './debian-trees.js';

const CACHE = '/var/cache/nsbox/test-trees';
const WEEK = 7 * 24 * 3600 * 1000;
/** What post steps install on top of the boot tree. */
export const RECIPE_PACKAGES = ['openssh-server', 'locales', 'tzdata'];

/** A fresh, untouched copy of a bootable `suite` tree with openssh-server and locales (no root password). */
export function recipeTree(suite: string): string {
  mkdirSync(CACHE, { recursive: true });
  const tarball = join(CACHE, `${suite}-recipe.tar`);
  const fresh = existsSync(tarball) && Date.now() - statSync(tarball).mtimeMs < WEEK;
  if (!fresh) {
    const tmp = `${tarball}.${process.pid}.tmp.tar`; // mmdebstrap picks the format from the name
    execFileSync('mmdebstrap', ['--quiet', '--format=tar', '--variant=minbase', `--include=${[...BOOT_PACKAGES, ...RECIPE_PACKAGES].join(',')}`,
      '--customize-hook=rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"',
      suite, tmp, hostMirror()], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20 * 60_000 });
    renameSync(tmp, tarball);
  }
  const dir = mkdtempSync(join(tmpdir(), `nsbox-recipe-${suite}-`));
  chmodSync(dir, 0o755);
  execFileSync('tar', ['-C', dir, '--xattrs', '-xpf', tarball]);
  return dir;
}
