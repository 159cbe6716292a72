/**
 * The `nsbox bootstrap` flags that become post-install steps (and the
 * wizard's answers): `--hostname`, `--root-password-file`, `--ssh`,
 * `--ssh-port`, `--ssh-socket`, `--authorized-keys`, `--user`,
 * `--user-groups`, `--user-password-file`, `--timezone`, `--locale`.
 * Light on purpose: no prompt library here, so `--yes` and scripted runs
 * never load it.
 */
import type { Command } from 'commander';
import { basename } from 'node:path';
import { UsageError } from '../errors.js';
import type { Distribution, PostStep, Recipe } from '../bootstrap/recipe.js';
import { checkHostname, checkKeysFile, checkLocale, checkPort, checkReadableFile, checkTimezone, checkUserName } from '../recipes/validate.js';
import { DEFAULT_SSH_PORT } from '../recipes/post.js';

/** Every answer the wizard can ask for, and the flag that gives it. */
export interface Answers {
  release?: string;
  mirror?: string;
  variant?: string;
  include?: string[];
  hostname?: string;
  /** Typed in the wizard; kept in memory only, handed to the tree's chpasswd. */
  rootPassword?: string;
  rootPasswordFile?: string;
  ssh?: boolean;
  sshPort?: number;
  sshSocket?: boolean;
  authorizedKeys?: string;
  user?: string;
  userGroups?: string[];
  userPasswordFile?: string;
  timezone?: string;
  locale?: string;
}

/** Flag of each answer, for error messages. */
export const FLAG: Record<keyof Answers, string> = {
  release: '--release',
  mirror: '--mirror',
  variant: '--variant',
  include: '--include',
  hostname: '--hostname',
  rootPassword: '--root-password-file',
  rootPasswordFile: '--root-password-file',
  ssh: '--ssh',
  sshPort: '--ssh-port',
  sshSocket: '--ssh-socket',
  authorizedKeys: '--authorized-keys',
  user: '--user',
  userGroups: '--user-groups',
  userPasswordFile: '--user-password-file',
  timezone: '--timezone',
  locale: '--locale',
};

const list = (v: string, prev: string[] = []) => [...prev, ...v.split(/[\s,]+/).filter(Boolean)];

/**
 * Adds the post-step flags to the `bootstrap` command.
 *
 * @example
 * addPostFlags(program.command('bootstrap'));
 */
export function addPostFlags(cmd: Command): Command {
  return cmd
    .option('--hostname <name>', 'host name of the new system (/etc/hostname, /etc/hosts)')
    .option('--root-password-file <file>', "root's password: the first line of FILE (hashed inside the tree)")
    .option('--ssh', 'set up an OpenSSH server (root login by key only)')
    .option('--no-ssh', 'no OpenSSH server (the wizard does not ask)')
    .option('--ssh-port <port>', `sshd port (default ${DEFAULT_SSH_PORT}; implies --ssh)`)
    .option('--ssh-socket', 'start sshd on the first connection (systemd socket activation; implies --ssh)')
    .option('--authorized-keys <file>', "public keys allowed to log in as root over ssh (and as --user); implies --ssh")
    .option('--user <name>', 'add an unprivileged user')
    .option('--user-groups <groups>', 'supplementary groups of --user (comma-separated)', list)
    .option('--user-password-file <file>', "--user's password: the first line of FILE")
    .option('--timezone <zone>', 'timezone, e.g. Europe/Berlin')
    .option('--locale <locale>', 'locale, e.g. en_US.UTF-8');
}

/** The answers the flags gave (commander's option object in, typed answers out). Values are checked by checkAnswers. */
export function answersFromFlags(o: Record<string, unknown>): Answers {
  const a: Answers = {};
  const s = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  a.release = s('release');
  a.mirror = s('mirror');
  a.variant = s('variant');
  if (Array.isArray(o.include)) a.include = o.include as string[];
  else if (typeof o.include === 'string') a.include = list(o.include);
  a.hostname = s('hostname');
  a.rootPasswordFile = s('rootPasswordFile');
  a.authorizedKeys = s('authorizedKeys');
  a.user = s('user');
  if (Array.isArray(o.userGroups)) a.userGroups = o.userGroups as string[];
  a.userPasswordFile = s('userPasswordFile');
  a.timezone = s('timezone');
  a.locale = s('locale');
  if (o.sshPort !== undefined) {
    const p = String(o.sshPort);
    a.sshPort = /^\d+$/.test(p) ? Number(p) : (p as unknown as number);
  }
  if (o.sshSocket) a.sshSocket = true;
  if (typeof o.ssh === 'boolean') a.ssh = o.ssh;
  if (a.sshPort !== undefined || a.sshSocket || a.authorizedKeys) a.ssh ??= true;
  for (const k of Object.keys(a) as (keyof Answers)[]) if (a[k] === undefined) delete a[k];
  return a;
}

/**
 * Checks the answers given so far; the error names the flag
 * (`--ssh-port: expected a port number 1-65535, got "x"`).
 */
export function checkAnswers(a: Answers): void {
  const bad = (k: keyof Answers, expected: string | undefined, got: unknown) => {
    if (expected) throw new UsageError(`${FLAG[k]}: expected ${expected}${got === undefined ? '' : `, got ${JSON.stringify(got)}`}`);
  };
  if (a.hostname !== undefined) bad('hostname', checkHostname(a.hostname), a.hostname);
  if (a.sshPort !== undefined) bad('sshPort', checkPort(a.sshPort), a.sshPort);
  if (a.authorizedKeys !== undefined) bad('authorizedKeys', checkKeysFile(a.authorizedKeys), a.authorizedKeys);
  if (a.rootPasswordFile !== undefined) bad('rootPasswordFile', checkReadableFile(a.rootPasswordFile), a.rootPasswordFile);
  if (a.userPasswordFile !== undefined) bad('userPasswordFile', checkReadableFile(a.userPasswordFile), a.userPasswordFile);
  if (a.user !== undefined) bad('user', checkUserName(a.user), a.user);
  if (a.timezone !== undefined) bad('timezone', checkTimezone(a.timezone), a.timezone);
  if (a.locale !== undefined) bad('locale', checkLocale(a.locale), a.locale);
  if ((a.userGroups || a.userPasswordFile) && !a.user) throw new UsageError(`${a.userGroups ? '--user-groups' : '--user-password-file'} needs --user NAME`);
  if (a.ssh === false && (a.sshPort !== undefined || a.sshSocket)) throw new UsageError('--no-ssh contradicts --ssh-port/--ssh-socket');
}

/**
 * What must be given when nothing is asked (`--yes`, no terminal): an sshd
 * that allows root by key only needs a key. Throws naming the flag.
 */
export function requireAnswers(a: Answers): void {
  if (a.ssh && !a.authorizedKeys) {
    throw new UsageError('sshd needs a public key to let root log in: --authorized-keys is missing', { hint: 'pass --authorized-keys ~/.ssh/id_ed25519.pub, or --no-ssh' });
  }
}

/**
 * The post steps for the answers, in the order they run: identity first,
 * then accounts, then sshd, then the console login.
 *
 * @example
 * postSteps({ hostname: 'web1', ssh: true, authorizedKeys: 'id.pub' }, 'boot')
 */
export function postSteps(a: Answers, variant: string | undefined): PostStep[] {
  const steps: PostStep[] = [];
  if (a.hostname) steps.push({ kind: 'hostname', hostname: a.hostname });
  if (a.locale) steps.push({ kind: 'locale', locale: a.locale });
  if (a.timezone) steps.push({ kind: 'timezone', timezone: a.timezone });
  if (a.rootPassword) steps.push({ kind: 'root-password', password: a.rootPassword });
  else if (a.rootPasswordFile) steps.push({ kind: 'root-password', passwordFile: a.rootPasswordFile });
  if (a.user) {
    steps.push({
      kind: 'user', name: a.user,
      ...(a.userGroups?.length ? { groups: a.userGroups } : {}),
      ...(a.userPasswordFile ? { passwordFile: a.userPasswordFile } : {}),
      ...(a.authorizedKeys ? { authorizedKeys: a.authorizedKeys } : {}),
    });
  }
  if (a.ssh) steps.push({ kind: 'sshd', port: a.sshPort ?? DEFAULT_SSH_PORT, ...(a.authorizedKeys ? { authorizedKeys: a.authorizedKeys } : {}), ...(a.sshSocket ? { socketActivated: true } : {}) });
  if (variant === 'boot' || a.ssh) steps.push({ kind: 'console-login' });
  return steps;
}

/** The recipe with the answers applied (answers win over what the recipe had; post steps are appended). */
export function applyAnswers(recipe: Recipe, a: Answers): Recipe {
  const out: Recipe = { ...recipe };
  if (a.release) out.release = a.release;
  if (a.mirror) out.mirror = a.mirror;
  if (a.variant) out.variant = a.variant;
  if (a.include?.length) out.include = [...new Set([...(recipe.include ?? []), ...a.include])];
  const steps = postSteps(a, out.variant);
  if (steps.length) {
    const had = recipe.post ?? [];
    out.post = [...had, ...steps.filter((s) => s.kind !== 'console-login' || !had.some((h) => h.kind === 'console-login'))];
  }
  return out;
}

/** The command that starts the finished tree. */
export function startCommand(dir: string, recipe: Pick<Recipe, 'variant' | 'include' | 'post'>): string {
  const boots = recipe.variant === 'boot' || recipe.include?.some((p) => p === 'systemd-sysv' || p === 'systemd') || recipe.post?.some((s) => s.kind === 'sshd' || s.kind === 'console-login');
  const q = /^[\w@%+=:,./-]+$/.test(dir) ? dir : `'${dir.replace(/'/g, "'\\''")}'`;
  return boots ? `nsbox run -b -D ${q}` : `nsbox run -D ${q}`;
}

/** A default host name from the target directory (`/srv/web1` → `web1`), when it is a valid one. */
export function hostnameFromDir(dir: string): string | undefined {
  const name = basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return name && !checkHostname(name) ? name : undefined;
}

export type { Distribution };
