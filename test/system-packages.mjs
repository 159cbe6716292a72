// The Debian packages the tests need (test/system-packages.txt): which are
// missing, and installing them when this is root with apt. Used by
// test/run.mjs before anything else runs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function wantedPackages(file = new URL('./system-packages.txt', import.meta.url)) {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

/** Packages not installed (dpkg's status), or undefined where there is no dpkg. */
export function missingPackages(wanted) {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\\n', ...wanted], { encoding: 'utf8' });
  if (r.error) return undefined;
  const installed = new Set(r.stdout.split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0]));
  return wanted.filter((p) => !installed.has(p));
}

/**
 * Makes sure the wanted packages are there. Returns undefined when they are
 * (installed now or before), else the one line that says what to install.
 */
export function ensurePackages(log = (l) => console.log(l)) {
  const wanted = wantedPackages();
  const missing = missingPackages(wanted);
  if (missing === undefined) return `the tests need a Debian host (no dpkg-query here); packages: ${wanted.join(' ')}`;
  if (!missing.length) return undefined;
  const hint = `the tests need these Debian packages: ${missing.join(' ')} (apt-get install -y ${missing.join(' ')})`;
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).error) return hint;
  log(`installing the system packages the tests need: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const quiet = { stdio: ['ignore', 'ignore', 'inherit'], env };
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], quiet).status === 0;
  // An install from stale lists fails: update once and try again.
  if (!install() && (spawnSync('apt-get', ['update', '-q'], quiet).status !== 0 || !install())) return `${hint}: apt-get failed`;
  const still = missingPackages(missing) ?? missing;
  return still.length ? `the tests need these Debian packages: ${still.join(' ')} (apt-get did not install them)` : undefined;
}
