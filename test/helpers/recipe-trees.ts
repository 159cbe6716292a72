/**
 * Debian trees for recipe tests: variant `boot` plus the packages that post
 * steps need (OpenSSH server, locales, tzdata), built once per suite by
 * nsbox's own engine from the host's mirror and cached as a tarball under
 * /var/cache/nsbox/test-trees (refreshed weekly); each test gets a fresh
 * copy. NSBOX_TEST_TREES=mmdebstrap builds them with mmdebstrap instead
 * (what these tests used before the engine existed).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOOT_PACKAGES, hostMirror } from './debian-trees.js';

const CACHE = '/var/cache/nsbox/test-trees';
const WEEK = 7 * 24 * 3600 * 1000;
/** What post steps install on top of the boot tree. */
export const RECIPE_PACKAGES = ['openssh-server', 'locales', 'tzdata'];

/** A fresh, untouched copy of a bootable `suite` tree with openssh-server and locales (no root password). */
export async function recipeTree(suite: string): Promise<string> {
  mkdirSync(CACHE, { recursive: true });
  const engine = process.env.NSBOX_TEST_TREES !== 'mmdebstrap';
  const tarball = join(CACHE, `${suite}-recipe${engine ? '-nsbox' : ''}.tar`);
  const fresh = existsSync(tarball) && Date.now() - statSync(tarball).mtimeMs < WEEK;
  if (!fresh && engine && engineFailed.has(suite)) return mmdebstrapTree(suite);
  if (!fresh && engine) {
    const { bootstrap } = await import('../../index.js');
    const build = mkdtempSync(join(tmpdir(), `nsbox-build-${suite}-`));
    try {
      await bootstrap({ distribution: 'debian', release: suite, variant: 'boot', include: RECIPE_PACKAGES }, build, { force: true });
      execFileSync('tar', ['-C', build, '--xattrs', '--numeric-owner', '-cf', `${tarball}.${process.pid}.tmp`, '.']);
      renameSync(`${tarball}.${process.pid}.tmp`, tarball);
    } catch (e) {
      // The engine's own tests cover the engine; these tests are about recipes, so they go on with mmdebstrap's tree.
      process.stderr.write(`\n  WARNING: nsbox's engine could not build the ${suite} test tree (${(e as Error).message.split('\n')[0]}); using mmdebstrap\n`);
      engineFailed.add(suite);
      return mmdebstrapTree(suite);
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
  } else if (!fresh) {
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

const engineFailed = new Set<string>();

function mmdebstrapTree(suite: string): Promise<string> {
  const saved = process.env.NSBOX_TEST_TREES;
  process.env.NSBOX_TEST_TREES = 'mmdebstrap';
  return recipeTree(suite).finally(() => {
    if (saved === undefined) delete process.env.NSBOX_TEST_TREES;
    else process.env.NSBOX_TEST_TREES = saved;
  });
}
