/**
 * Post-install steps: what turns a finished tree into a configured machine
 * (hostname, passwords, a user, locale, timezone, files, services, commands,
 * the console login, sshd). Files are written from the host with paths
 * resolved inside the tree (recipes/tree-fs.ts); anything that needs the
 * tree's own tools (chpasswd, useradd, locale-gen, systemctl, ssh-keygen)
 * runs inside it through nsbox's runtime (recipes/in-tree.ts).
 *
 * The same steps work on Debian and Fedora; where they differ (package and
 * unit names, locale files) the difference is in DISTRO below.
 */
import { chmodSync, chownSync, existsSync, readFileSync, readlinkSync } from 'node:fs';
import { NsboxError, AbortedError } from '../errors.js';
import type { Distribution, PostStep } from '../bootstrap/recipe.js';
import type { ProgressEvent } from '../bootstrap/progress.js';
import { inTree } from './in-tree.js';
import { checkHostname } from './validate.js';
import { mkdirInTree, ownerInTree, readTreeFile, resolveInTree, symlinkInTree, treeUser, writeTreeFile } from './tree-fs.js';

/** What runPostSteps needs from its caller. */
export interface PostContext {
  /** Default: `recipe.distribution`. */
  distribution?: Distribution;
  recipe?: { distribution: Distribution };
  signal?: AbortSignal;
  /** One line of progress per step (never a secret). Ignored when `emit` is given. */
  log(line: string): void;
  /** The engine's progress sink: lines become `log` events at level info. */
  emit?: (event: ProgressEvent) => void;
}

/** A post step failed inside the tree; the message names the step. */
export class PostStepError extends NsboxError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...opts, code: 'post-step' });
  }
}

/** The default sshd port: the host usually has its own sshd on 22, and containers share its network by default. */
export const DEFAULT_SSH_PORT = 2222;

/** Where the distributions differ. */
const DISTRO = {
  debian: { sshService: 'ssh', sshPackage: 'openssh-server', init: 'systemd-sysv', timezoneFile: true },
  fedora: { sshService: 'sshd', sshPackage: 'openssh-server', init: 'systemd', timezoneFile: false },
} as const;

/** The language part of a locale (`de` of `de_CH.UTF-8`). */
const language = (locale: string) => locale.split(/[_.@]/)[0];
const isCLocale = (locale: string) => /^(C|POSIX)(\.UTF-8|\.utf8)?$/.test(locale);

/**
 * Packages the steps need in the tree, to add to the recipe's package set
 * before resolving (the engine's `include`).
 *
 * @example
 * packagesFor([{ kind: 'sshd' }, { kind: 'locale', locale: 'de_DE.UTF-8' }], 'debian') // ['openssh-server', 'systemd-sysv', 'locales']
 */
export function packagesFor(steps: readonly PostStep[] | undefined, distribution: Distribution): string[] {
  const out = new Set<string>();
  for (const s of steps ?? []) {
    if (s.kind === 'sshd') out.add(DISTRO[distribution].sshPackage);
    // systemctl and a systemd to start sshd and the console getty: in `boot`, not in minbase.
    if (s.kind === 'sshd' || s.kind === 'services' || s.kind === 'console-login') out.add(DISTRO[distribution].init);
    if (s.kind === 'locale' && !isCLocale(s.locale)) out.add(distribution === 'debian' ? 'locales' : `glibc-langpack-${language(s.locale)}`);
    if (s.kind === 'timezone') out.add('tzdata');
    if ((s.kind === 'user' || s.kind === 'root-password') && distribution === 'fedora') out.add('shadow-utils');
  }
  return [...out];
}

/** Reads a secret from a step (inline or first line of a file); never logged. */
export function readSecret(step: { password?: string; passwordFile?: string }): string | undefined {
  if (step.password !== undefined) return step.password;
  if (step.passwordFile === undefined) return undefined;
  const text = readFileSync(step.passwordFile, 'utf8');
  return text.split('\n')[0].replace(/\r$/, '');
}

/** Reads an authorized_keys file from the host: its non-empty, non-comment lines. */
export function readAuthorizedKeys(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

type Runner = (argv: string[], what: string, input?: string) => Promise<string>;

/**
 * Runs the steps in order inside the tree at `dir`. Throws a
 * PostStepError naming the step (`post[2] user: …`) on the first failure,
 * an AbortedError when `ctx.signal` fires.
 *
 * @example
 * await runPostSteps([{ kind: 'hostname', hostname: 'web1' }, { kind: 'sshd', port: 2222, authorizedKeys: '/root/.ssh/id_ed25519.pub' }],
 *   '/srv/web', { distribution: 'debian', log: console.log });
 */
export async function runPostSteps(steps: readonly PostStep[], dir: string, context: PostContext): Promise<void> {
  const distribution = context.distribution ?? context.recipe?.distribution;
  if (distribution !== 'debian' && distribution !== 'fedora') throw new PostStepError(`cannot run post steps: unknown distribution \`${distribution}\``);
  const emit = context.emit;
  const ctx: Ctx = { distribution, signal: context.signal, log: emit ? (l) => emit({ type: 'log', level: 'info', message: l }) : (l) => context.log(l) };
  for (const [i, step] of steps.entries()) {
    if (ctx.signal?.aborted) throw new AbortedError();
    const where = `post[${i}] ${step.kind}`;
    const exec: Runner = async (argv, what, input) => {
      const hostname = readTreeFile(dir, '/etc/hostname')?.trim();
      const { code, output } = await inTree(dir, argv, { input, signal: ctx.signal, hostname: hostname && !checkHostname(hostname) ? hostname : undefined });
      if (ctx.signal?.aborted) throw new AbortedError();
      if (code !== 0) {
        const last = output.trim().split('\n').filter(Boolean).slice(-1)[0];
        throw new PostStepError(`cannot ${what} (${where}): \`${argv[0]}\` exited with status ${code}${last ? `: ${last}` : ''}`);
      }
      return output;
    };
    try {
      await STEPS[step.kind](step as never, dir, ctx, exec, steps);
    } catch (e) {
      if (e instanceof PostStepError || e instanceof AbortedError) throw e;
      const msg = e instanceof NsboxError ? e.message : (e as NodeJS.ErrnoException).message ?? String(e);
      throw new PostStepError(`cannot apply ${where}: ${msg}`, { cause: e, hint: e instanceof NsboxError ? e.hint : undefined });
    }
  }
}

type Ctx = { distribution: Distribution; signal?: AbortSignal; log(line: string): void };
type StepOf<K extends PostStep['kind']> = Extract<PostStep, { kind: K }>;
type Handler<K extends PostStep['kind']> = (step: StepOf<K>, dir: string, ctx: Ctx, exec: Runner, all: readonly PostStep[]) => Promise<void>;

const STEPS: { [K in PostStep['kind']]: Handler<K> } = {
  async hostname(step, dir, ctx) {
    writeTreeFile(dir, '/etc/hostname', `${step.hostname}\n`);
    writeTreeFile(dir, '/etc/hosts', hostsFile(readTreeFile(dir, '/etc/hosts'), step.hostname));
    ctx.log(`hostname: ${step.hostname}`);
  },

  async 'root-password'(step, dir, ctx, exec) {
    const password = readSecret(step);
    if (!password) throw new PostStepError('cannot set the root password: it is empty');
    await exec(['chpasswd'], 'set the root password', `root:${password}\n`);
    ctx.log('root password set (hashed inside the tree)');
  },

  async user(step, dir, ctx, exec) {
    const exists = treeUser(dir, step.name) !== undefined;
    const shell = step.shell ?? (existsSync(resolveInTree(dir, '/bin/bash')) ? '/bin/bash' : '/bin/sh');
    const args = ['-s', shell];
    if (step.groups?.length) args.push('-G', step.groups.join(','));
    if (exists) {
      if (step.groups?.length) args.splice(args.indexOf('-G'), 0, '-a');
      await exec(['usermod', ...args, step.name], `update user \`${step.name}\``);
    } else {
      if (step.uid !== undefined) args.push('-u', String(step.uid));
      await exec(['useradd', '-m', ...args, step.name], `add user \`${step.name}\``);
    }
    const password = readSecret(step);
    if (password) await exec(['chpasswd'], `set the password of \`${step.name}\``, `${step.name}:${password}\n`);
    if (step.authorizedKeys) installKeys(dir, step.name, readAuthorizedKeys(step.authorizedKeys));
    ctx.log(`user ${step.name}${step.groups?.length ? ` (groups ${step.groups.join(',')})` : ''}${password ? ', password set' : ''}${step.authorizedKeys ? ', authorized keys installed' : ''}`);
  },

  async locale(step, dir, ctx, exec) {
    const conf = `LANG=${step.locale}\n`;
    if (ctx.distribution === 'debian') {
      if (!isCLocale(step.locale)) {
        const gen = readTreeFile(dir, '/etc/locale.gen');
        if (gen === undefined) throw new PostStepError(`cannot set locale ${step.locale}: the tree has no /etc/locale.gen`, { hint: 'add the `locales` package' });
        writeTreeFile(dir, '/etc/locale.gen', enableLocale(gen, step.locale));
        await exec(['locale-gen'], `generate locale ${step.locale}`);
      }
      writeTreeFile(dir, '/etc/default/locale', conf);
    } else {
      writeTreeFile(dir, '/etc/locale.conf', conf);
    }
    ctx.log(`locale: ${step.locale}`);
  },

  async timezone(step, dir, ctx) {
    const zone = `/usr/share/zoneinfo/${step.timezone}`;
    if (!existsSync(resolveInTree(dir, zone))) {
      throw new PostStepError(`cannot set timezone ${step.timezone}: the tree has no ${zone}`, { hint: 'add the `tzdata` package' });
    }
    symlinkInTree(dir, '/etc/localtime', `..${zone}`);
    if (DISTRO[ctx.distribution].timezoneFile) writeTreeFile(dir, '/etc/timezone', `${step.timezone}\n`);
    ctx.log(`timezone: ${step.timezone}`);
  },

  async file(step, dir, ctx) {
    const { uid, gid } = step.owner ? ownerInTree(dir, step.owner) : { uid: 0, gid: 0 };
    writeTreeFile(dir, step.path, step.content, { mode: step.mode ?? 0o644, uid, gid });
    ctx.log(`file ${step.path} (${(step.mode ?? 0o644).toString(8).padStart(4, '0')}${step.owner ? ` ${step.owner}` : ''})`);
  },

  async services(step, dir, ctx, exec) {
    for (const verb of ['enable', 'disable', 'mask'] as const) {
      const units = step[verb];
      if (!units?.length) continue;
      await exec(['systemctl', verb, ...units], `${verb} ${units.join(', ')}`);
      ctx.log(`services: ${verb} ${units.join(' ')}`);
    }
  },

  async command(step, dir, ctx, exec) {
    const argv = typeof step.command === 'string' ? ['/bin/sh', '-c', step.command] : step.command;
    const shown = typeof step.command === 'string' ? step.command : step.command.join(' ');
    const output = await exec(argv, `run \`${shown}\``);
    ctx.log(`command: ${shown}`);
    for (const line of output.split('\n').filter(Boolean)) ctx.log(`  ${line}`);
  },

  async 'console-login'(step, dir, ctx, exec, all) {
    // Old PAM setups (Fedora ≤ 28, CentOS 7) only let root log in on ttys listed in /etc/securetty.
    const securetty = readTreeFile(dir, '/etc/securetty');
    if (securetty !== undefined) {
      const have = new Set(securetty.split('\n').map((l) => l.trim()));
      const want = ['console', ...Array.from({ length: 10 }, (_, n) => `pts/${n}`)].filter((t) => !have.has(t));
      if (want.length) writeTreeFile(dir, '/etc/securetty', `${securetty.replace(/\n?$/, '\n')}${want.join('\n')}\n`, { mode: 0o600 });
    }
    // In a container systemd's getty generator starts console-getty.service on /dev/console; it must not be masked.
    const unitPath = resolveInTree(dir, '/etc/systemd/system/console-getty.service', { followLast: false });
    if (linkTarget(unitPath) === '/dev/null') {
      await exec(['systemctl', 'unmask', 'console-getty.service'], 'unmask console-getty.service');
    }
    const setsRoot = all.some((s) => s.kind === 'root-password');
    if (!setsRoot && !rootCanLogIn(dir)) {
      ctx.log('console login: root has no password, so the console login will refuse root; add a root-password step (--root-password-file) or use `nsbox shell NAME`');
    } else {
      ctx.log('console login: ready for `nsbox run -b`');
    }
  },

  async sshd(step, dir, ctx, exec) {
    const port = step.port ?? DEFAULT_SSH_PORT;
    const unit = DISTRO[ctx.distribution].sshService;
    const config = readTreeFile(dir, '/etc/ssh/sshd_config');
    if (config === undefined) {
      throw new PostStepError('cannot set up sshd: the tree has no /etc/ssh/sshd_config', { hint: `add the \`${DISTRO[ctx.distribution].sshPackage}\` package` });
    }
    const settings = [`Port ${port}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no'];
    if (/^\s*Include\s+\/etc\/ssh\/sshd_config\.d\/\*\.conf/m.test(config)) {
      // sshd keeps the first value it reads, and the include comes first: a low-numbered drop-in wins over 50-redhat.conf & co.
      writeTreeFile(dir, '/etc/ssh/sshd_config.d/10-nsbox.conf', `# Written by nsbox (sshd post step)\n${settings.join('\n')}\n`);
    } else {
      writeTreeFile(dir, '/etc/ssh/sshd_config', prependSettings(config, settings), { mode: 0o644 });
    }
    await exec(['ssh-keygen', '-A'], 'generate ssh host keys');
    if (step.authorizedKeys) installKeys(dir, 'root', readAuthorizedKeys(step.authorizedKeys));
    if (step.socketActivated) {
      writeTreeFile(dir, `/etc/systemd/system/${unit}.socket.d/10-nsbox.conf`, `# Written by nsbox (sshd post step)\n[Socket]\nListenStream=\nListenStream=${port}\n`);
      await exec(['systemctl', 'disable', `${unit}.service`], `disable ${unit}.service`);
      await exec(['systemctl', 'enable', `${unit}.socket`], `enable ${unit}.socket`);
    } else {
      await exec(['systemctl', 'disable', `${unit}.socket`], `disable ${unit}.socket`);
      await exec(['systemctl', 'enable', `${unit}.service`], `enable ${unit}.service`);
    }
    ctx.log(`sshd: port ${port}, root by key only${step.authorizedKeys ? '' : ' (no authorized keys installed)'}, ${step.socketActivated ? `${unit}.socket (a connection starts sshd)` : `${unit}.service`}`);
  },
};

/** /etc/hosts with `127.0.1.1 NAME [SHORT]` (Debian's convention) and localhost lines kept. */
export function hostsFile(current: string | undefined, hostname: string): string {
  const short = hostname.split('.')[0];
  const line = `127.0.1.1\t${hostname}${short !== hostname ? ` ${short}` : ''}`;
  const base = current ?? '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n';
  const lines = base.replace(/\n$/, '').split('\n');
  const at = lines.findIndex((l) => /^\s*127\.0\.1\.1\s/.test(l));
  if (at >= 0) lines[at] = line;
  else lines.splice(lines.findIndex((l) => /^\s*127\.0\.0\.1\s/.test(l)) + 1, 0, line);
  return `${lines.join('\n')}\n`;
}

/** /etc/locale.gen with `LOCALE UTF-8` uncommented or added. */
export function enableLocale(gen: string, locale: string): string {
  const entry = `${locale} UTF-8`;
  const re = new RegExp(`^#\\s*${locale.replace(/[.@]/g, '\\$&')}\\s+UTF-8\\s*$`, 'm');
  if (new RegExp(`^${locale.replace(/[.@]/g, '\\$&')}\\s+UTF-8\\s*$`, 'm').test(gen)) return gen;
  if (re.test(gen)) return gen.replace(re, entry);
  return `${gen.replace(/\n?$/, '\n')}${entry}\n`;
}

/** sshd_config with our settings first (sshd keeps the first value) and the old lines commented out. */
export function prependSettings(config: string, settings: string[]): string {
  const keys = new Set(settings.map((s) => s.split(' ')[0].toLowerCase()));
  const body = config.split('\n').map((l) => (keys.has(l.trim().split(/\s+/)[0]?.toLowerCase()) ? `#${l}  # nsbox: set above` : l));
  return `# Set by nsbox (sshd post step)\n${settings.join('\n')}\n\n${body.join('\n')}`;
}

function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Whether root has a usable password hash in the tree's /etc/shadow. */
function rootCanLogIn(dir: string): boolean {
  const line = (readTreeFile(dir, '/etc/shadow') ?? '').split('\n').find((l) => l.startsWith('root:'));
  const hash = line?.split(':')[1] ?? '';
  return hash.length > 1 && !hash.startsWith('!') && !hash.startsWith('*');
}

/** Adds keys to ~NAME/.ssh/authorized_keys (0700/0600, owned by the user), keeping what is there. */
function installKeys(dir: string, name: string, keys: string[]): void {
  const user = treeUser(dir, name);
  if (!user) throw new PostStepError(`cannot install authorized keys: no user \`${name}\` in the tree`);
  const sshDir = `${user.home}/.ssh`;
  const hostDir = mkdirInTree(dir, sshDir, 0o700);
  chownSync(hostDir, user.uid, user.gid);
  chmodSync(hostDir, 0o700);
  const file = `${sshDir}/authorized_keys`;
  const current = readTreeFile(dir, file) ?? '';
  const have = new Set(current.split('\n').map((l) => l.trim()));
  const add = keys.filter((k) => !have.has(k));
  writeTreeFile(dir, file, `${current.replace(/\n?$/, current ? '\n' : '')}${add.map((k) => `${k}\n`).join('')}`, { mode: 0o600, uid: user.uid, gid: user.gid });
}
