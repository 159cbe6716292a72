/**
 * The interactive side of `nsbox bootstrap`: on a terminal, every choice
 * the flags left open is asked with @inquirer/prompts (loaded only here,
 * only then), in a fixed order — release, mirror (checked by fetching the
 * suite's index), variant, extra packages, hostname, root password (hidden,
 * twice), sshd and its port, socket activation, authorized keys — then a
 * summary and a confirmation. Ctrl-C at any prompt is an AbortedError
 * ("cancelled", exit 130) before anything is written.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AbortedError } from '../errors.js';
import type { Recipe } from '../bootstrap/recipe.js';
import { archiveUrl, isArchiveUrl } from '../bootstrap/apt/url.js';
import { DEFAULT_RELEASE, RELEASES, VARIANTS, chooseMirrors, debianArch, findRelease } from '../recipes/debian.js';
import { FEDORA_CURRENT, FEDORA_OLDEST, FEDORA_VARIANTS, fedoraRelease, fedoraRepos } from '../recipes/fedora.js';
import { DEFAULT_SSH_PORT } from '../recipes/post.js';
import { checkHostname, checkKeysFile, checkPort, validateRecipe } from '../recipes/validate.js';
import { type Answers, hostnameFromDir } from './post-flags.js';

const PACKAGE = /^[A-Za-z0-9_][A-Za-z0-9_+.:~-]*$/;

/**
 * Checks that a mirror serves the release: fetches the suite's InRelease
 * (Debian) or the repository's repomd.xml (Fedora). Resolves with the
 * reason it cannot be used, or undefined when it can.
 *
 * @example
 * await checkMirror('debian', 'http://mirror.example/debian', 'trixie') // undefined, or 'cannot fetch …: HTTP 404'
 */
export async function checkMirror(distribution: Recipe['distribution'], mirror: string, release: string, arch?: string): Promise<string | undefined> {
  if (!isArchiveUrl(mirror)) return 'expected an http://, https:// or file:// URL';
  let url: string;
  if (distribution === 'debian') {
    url = archiveUrl(mirror, `dists/${findRelease(release).codename}/InRelease`);
  } else {
    const rel = fedoraRelease(release);
    url = `${fedoraRepos(rel, arch ?? (process.arch === 'arm64' ? 'aarch64' : 'x86_64'), { mirror })[0].baseUrl}repodata/repomd.xml`;
  }
  if (url.startsWith('file://')) return existsSync(new URL(url)) ? undefined : `cannot read ${url}: no such file`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(15_000), redirect: 'follow' });
    await res.body?.cancel();
    return res.ok ? undefined : `cannot fetch ${url}: HTTP ${res.status}`;
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    return `cannot fetch ${url}: ${err.name === 'TimeoutError' ? 'no answer in 15 s' : err.cause?.code ?? err.cause?.message ?? err.message}`;
  }
}

/** The first public key in the usual places (the invoking user's under sudo), for the default answer. */
function defaultKeyFile(): string | undefined {
  const homes = [process.env.SUDO_USER ? `/home/${process.env.SUDO_USER}` : undefined, homedir()].filter(Boolean) as string[];
  for (const h of homes) {
    for (const k of ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub']) {
      const p = join(h, '.ssh', k);
      if (existsSync(p) && !checkKeysFile(p)) return p;
    }
  }
  return undefined;
}

const isCancel = (e: unknown) => e instanceof Error && (e.name === 'ExitPromptError' || e.name === 'AbortPromptError' || e.name === 'CancelPromptError');

/**
 * Asks for everything `answers` and `recipe` leave open, shows a summary
 * and asks for confirmation. Resolves with the completed answers; rejects
 * with AbortedError('cancelled') on Ctrl-C or a "no".
 *
 * @example
 * const answers = await runWizard({ distribution: 'debian' }, '/srv/web', { hostname: 'web1' });
 */
export async function runWizard(recipe: Recipe, dir: string, given: Answers): Promise<Answers> {
  validateRecipe(recipe); // a bad --release or recipe field fails before the first question
  const { input, select, password, confirm } = await import('@inquirer/prompts');
  const a: Answers = { ...given };
  const dist = recipe.distribution;
  const ask = <T>(p: Promise<T>) => p.catch((e: unknown) => {
    if (isCancel(e)) throw new AbortedError('cancelled');
    throw e;
  });
  try {
    // release
    if (!recipe.release && !a.release) {
      a.release = dist === 'debian'
        ? await ask(select({
          message: 'Debian release',
          choices: RELEASES.map((r) => ({ value: r.codename, name: `${r.codename}${r.version ? ` (Debian ${r.version}, ${r.alias})` : ` (${r.alias})`}` })),
          default: DEFAULT_RELEASE,
        }))
        : await ask(select({
          message: 'Fedora release',
          choices: [...Array.from({ length: FEDORA_CURRENT - FEDORA_OLDEST + 1 }, (_, i) => String(FEDORA_CURRENT - i)), 'rawhide'].map((v) => ({ value: v })),
          default: String(FEDORA_CURRENT),
          pageSize: 8,
        }));
    }
    const release = a.release ?? recipe.release ?? (dist === 'debian' ? DEFAULT_RELEASE : String(FEDORA_CURRENT));
    // mirror, checked before going on
    if (!recipe.mirror && !recipe.metalink && !a.mirror) {
      let host: string | undefined;
      if (dist === 'debian') {
        try {
          host = chooseMirrors().mirror;
        } catch { /* no apt sources on this host: no default */ }
      }
      const m = await ask(input({
        message: dist === 'debian' ? 'Mirror' : 'Mirror (empty: Fedora\'s metalink)',
        default: host,
        required: dist === 'debian',
        validate: async (v) => (dist === 'fedora' && !v.trim() ? true : (await checkMirror(dist, v.trim(), release, recipe.arch)) ?? true),
      }));
      if (m.trim()) a.mirror = m.trim().replace(/\/+$/, '');
    }
    // variant
    if (!recipe.variant && !a.variant) {
      a.variant = await ask(select({
        message: 'Variant',
        choices: dist === 'debian'
          ? Object.values(VARIANTS).map((v) => ({ value: v.name, name: v.name, description: v.description }))
          : FEDORA_VARIANTS.map((v) => ({ value: v, name: v, description: v === 'boot' ? 'minimal with systemd: boots with `nsbox run -b` to a console login' : 'a shell, coreutils, rpm and the package manager' })),
        default: 'boot',
      }));
    }
    // extra packages
    if (!a.include) {
      const extra = await ask(input({
        message: 'Extra packages (comma-separated, empty for none)',
        validate: (v) => {
          const bad = v.split(/[\s,]+/).filter(Boolean).find((p) => !PACKAGE.test(p));
          return bad ? `not a package name: ${bad}` : true;
        },
      }));
      a.include = extra.split(/[\s,]+/).filter(Boolean);
    }
    // hostname
    if (!a.hostname) {
      a.hostname = (await ask(input({ message: 'Hostname', default: hostnameFromDir(dir), required: true, validate: (v) => (checkHostname(v.trim()) ? `expected ${checkHostname(v.trim())}` : true) }))).trim();
    }
    // root password, typed twice
    if (!a.rootPassword && !a.rootPasswordFile) {
      for (;;) {
        const first = await ask(password({ message: 'Root password (empty: none; log in with `nsbox shell`)', mask: '*' }));
        if (!first) break;
        const again = await ask(password({ message: 'Root password again', mask: '*' }));
        if (first === again) {
          a.rootPassword = first;
          break;
        }
        process.stdout.write('The passwords do not match; type them again.\n');
      }
    }
    // sshd
    if (a.ssh === undefined) {
      a.ssh = await ask(confirm({ message: 'Set up an OpenSSH server (root login by key only)?', default: false }));
    }
    if (a.ssh) {
      if (a.sshPort === undefined) {
        const p = await ask(input({ message: 'sshd port', default: String(DEFAULT_SSH_PORT), validate: (v) => (checkPort(Number(v)) || !/^\d+$/.test(v.trim()) ? 'expected a port number 1-65535' : true) }));
        a.sshPort = Number(p);
      }
      if (a.sshSocket === undefined) {
        a.sshSocket = await ask(confirm({ message: 'Start sshd only when someone connects (socket activation)?', default: false }));
      }
      if (!a.authorizedKeys) {
        a.authorizedKeys = (await ask(input({ message: 'Authorized keys file (public keys allowed to log in as root)', default: defaultKeyFile(), required: true, validate: (v) => checkKeysFile(v.trim()) ? `expected ${checkKeysFile(v.trim())}` : true }))).trim();
      }
    }
    // summary and confirmation
    process.stdout.write(`\n${summary(recipe, dir, a, release)}\n\n`);
    const go = await ask(confirm({ message: 'Bootstrap now?', default: true }));
    if (!go) throw new AbortedError('cancelled');
    return a;
  } catch (e) {
    if (isCancel(e)) throw new AbortedError('cancelled');
    throw e;
  }
}

/** The summary shown before the confirmation (never the password). */
export function summary(recipe: Recipe, dir: string, a: Answers, release: string): string {
  const rows: [string, string][] = [
    ['Target', dir],
    ['System', `${recipe.distribution} ${release}, variant ${a.variant ?? recipe.variant ?? 'default'}, ${recipe.arch ?? (recipe.distribution === 'debian' ? safeArch() : 'host architecture')}`],
    ['Mirror', a.mirror ?? recipe.mirror ?? (recipe.distribution === 'debian' ? "the host's apt mirror" : "Fedora's metalink")],
    ['Packages', [...new Set([...(recipe.include ?? []), ...(a.include ?? [])])].join(', ') || 'no extra packages'],
    ['Hostname', a.hostname ?? '(unchanged)'],
    ['Root', a.rootPassword ? 'password set (hashed inside the tree)' : a.rootPasswordFile ? `password from ${a.rootPasswordFile}` : 'no password (console login refused; use `nsbox shell`)'],
  ];
  if (a.user) rows.push(['User', a.user + (a.userGroups?.length ? ` (groups ${a.userGroups.join(', ')})` : '')]);
  if (a.timezone) rows.push(['Timezone', a.timezone]);
  if (a.locale) rows.push(['Locale', a.locale]);
  rows.push(['sshd', a.ssh ? `port ${a.sshPort ?? DEFAULT_SSH_PORT}${a.sshSocket ? ', socket-activated' : ''}, root by key from ${a.authorizedKeys}` : 'no']);
  return rows.map(([k, v]) => `  ${k.padEnd(10)} ${v}`).join('\n');
}

function safeArch(): string {
  try {
    return debianArch();
  } catch {
    return process.arch;
  }
}
