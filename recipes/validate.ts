/**
 * Recipe validation, before anything is downloaded: every field is checked
 * and an error names the field and what was expected
 * (`post[2].port: expected a port number 1-65535, got "x"`), files the
 * recipe points to (keys, password files, keyrings) must be readable now,
 * and values that would only fail half-way through a bootstrap (hostname,
 * user name, timezone, locale) are checked against the same rules the tree
 * will apply.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { UsageError } from '../errors.js';
import type { Distribution, PostStep, Recipe } from '../bootstrap/recipe.js';
import { COMPONENTS, findRelease, findVariant } from './debian.js';
import { SUPPORTED_LOCALES } from './locales.js';
import { FEDORA_CURRENT, FEDORA_OLDEST, FEDORA_VARIANTS, fedoraRelease } from './fedora.js';

/** A recipe that fails validation: which field, what was expected, what was given. */
export class RecipeError extends UsageError {
  /** The field, e.g. `post[2].port`. */
  readonly field: string;
  constructor(field: string, expected: string, got: unknown, opts: { hint?: string; source?: string } = {}) {
    const where = opts.source ? `invalid recipe \`${opts.source}\`: ` : 'invalid recipe: ';
    super(`${where}${field}: expected ${expected}${got === undefined ? '' : `, got ${show(got)}`}`, { hint: opts.hint });
    this.field = field;
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** RFC 1123 host name of at most 64 characters (the kernel's limit). */
const HOSTNAME = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/;
/** useradd's default NAME_REGEX (Debian's adduser is stricter still). */
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const GROUP_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const UNIT = /^[A-Za-z0-9:_.@\\-]+$/;
const PACKAGE = /^[A-Za-z0-9_][A-Za-z0-9_+.:~-]*$/;
const LOCALE = /^([a-z]{2,3}_[A-Z]{2})\.UTF-8(@[a-z]+)?$/;

/** Whether a host name is valid (what the `hostname` step and `--hostname` accept). */
export function checkHostname(v: unknown): string | undefined {
  if (typeof v !== 'string' || !HOSTNAME.test(v) || v.length > 64) return 'a host name (letters, digits and hyphens, dot-separated labels, at most 64 characters)';
  return undefined;
}

/** Whether a port is valid; returns what was expected, or undefined. */
export function checkPort(v: unknown): string | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) return 'a port number 1-65535';
  return undefined;
}

/** Whether a user name is valid for useradd. */
export function checkUserName(v: unknown): string | undefined {
  if (typeof v !== 'string' || !USER_NAME.test(v)) return 'a user name (lower-case letters, digits, _ and -, starting with a letter or _, at most 32 characters)';
  if (v === 'root') return 'a user other than root (root exists; use a root-password step)';
  return undefined;
}

/**
 * A timezone the tree will have: checked against the host's
 * /usr/share/zoneinfo when it exists, else against the IANA database built
 * into Node.js (ICU).
 */
export function checkTimezone(v: unknown): string | undefined {
  const expected = 'an IANA timezone such as Europe/Berlin or UTC';
  if (typeof v !== 'string' || !/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(v) || v.split('/').some((p) => !/^[A-Z0-9]/.test(p))) return expected;
  const host = `/usr/share/zoneinfo/${v}`;
  if (existsSync('/usr/share/zoneinfo/UTC') || existsSync('/usr/share/zoneinfo/Etc/UTC')) {
    try {
      if (statSync(host).isFile()) return undefined;
    } catch { /* not there */ }
    return expected;
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: v });
    return undefined;
  } catch {
    return expected;
  }
}

/** A locale of the form `ll_CC.UTF-8` that glibc supports (or C.UTF-8). */
export function checkLocale(v: unknown): string | undefined {
  const expected = 'a locale such as en_US.UTF-8 or C.UTF-8';
  if (v === 'C.UTF-8') return undefined;
  const m = typeof v === 'string' ? LOCALE.exec(v) : null;
  if (!m) return expected;
  return SUPPORTED_LOCALES.has(`${m[1]}${m[2] ?? ''}`) ? undefined : `${expected} (glibc does not know ${m[1]}${m[2] ?? ''})`;
}

/** A readable regular file on the host; returns what was expected, or undefined. */
export function checkReadableFile(v: unknown): string | undefined {
  if (typeof v !== 'string' || !v) return 'the path of a readable file';
  try {
    if (!statSync(v).isFile()) return 'the path of a readable file (this is not a regular file)';
    accessSync(v, constants.R_OK);
    return undefined;
  } catch (e) {
    return `the path of a readable file (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot read it'})`;
  }
}

/** An authorized_keys file: readable and with at least one public key line. */
export function checkKeysFile(v: unknown): string | undefined {
  const bad = checkReadableFile(v);
  if (bad) return bad.replace('a readable file', 'a readable public key file');
  const keys = readFileSync(v as string, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (!keys.length) return 'a public key file with at least one key (it is empty)';
  if (keys.some((k) => /PRIVATE KEY/.test(k))) return 'a public key file (this is a private key; use the .pub file)';
  if (!keys.every((k) => /(^|\s)(ssh-|ecdsa-|sk-ssh-|sk-ecdsa-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+/.test(k))) return 'a public key file in authorized_keys format (lines such as "ssh-ed25519 AAAA... comment")';
  return undefined;
}

const KNOWN_FIELDS = ['distribution', 'release', 'arch', 'variant', 'mirror', 'metalink', 'components', 'include', 'exclude', 'withRecommends', 'updates', 'keyring', 'noVerify', 'post'];

const STEP_FIELDS: Record<PostStep['kind'], string[]> = {
  hostname: ['hostname'],
  'root-password': ['password', 'passwordFile'],
  user: ['name', 'uid', 'groups', 'shell', 'password', 'passwordFile', 'authorizedKeys'],
  locale: ['locale'],
  timezone: ['timezone'],
  file: ['path', 'content', 'mode', 'owner'],
  services: ['enable', 'disable', 'mask'],
  command: ['command'],
  'console-login': [],
  sshd: ['port', 'authorizedKeys', 'socketActivated'],
};

/**
 * Checks a recipe (from code, a file, or the CLI's flags) and returns it
 * typed. Throws a RecipeError naming the first bad field. `source` names
 * the recipe file in messages.
 *
 * @example
 * validateRecipe({ distribution: 'debian', post: [{ kind: 'sshd', port: 'x' }] })
 * // RecipeError: invalid recipe: post[0].port: expected a port number 1-65535, got "x"
 */
export function validateRecipe(input: unknown, opts: { source?: string } = {}): Recipe {
  const fail = (field: string, expected: string, got: unknown, hint?: string): never => {
    throw new RecipeError(field, expected, got, { hint, source: opts.source });
  };
  const check = (field: string, bad: string | undefined, got: unknown, hint?: string) => {
    if (bad) fail(field, bad, got, hint);
  };
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail('recipe', 'an object with at least `distribution`', input);
  const r = input as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KNOWN_FIELDS.includes(k)) fail(k, `a known field (${KNOWN_FIELDS.join(', ')})`, undefined);
  if (r.distribution !== 'debian' && r.distribution !== 'fedora') fail('distribution', '"debian" or "fedora"', r.distribution);
  const dist = r.distribution as Distribution;

  const optString = (f: string) => {
    if (r[f] !== undefined && (typeof r[f] !== 'string' || !r[f])) fail(f, 'a non-empty string', r[f]);
  };
  const optBool = (f: string) => {
    if (r[f] !== undefined && typeof r[f] !== 'boolean') fail(f, 'true or false', r[f]);
  };
  const stringList = (f: string, v: unknown, re: RegExp, what: string) => {
    if (v === undefined) return;
    if (!Array.isArray(v)) fail(f, `an array of ${what}`, v);
    (v as unknown[]).forEach((x, i) => {
      if (typeof x !== 'string' || !re.test(x)) fail(`${f}[${i}]`, what, x);
    });
  };
  ['release', 'arch', 'variant', 'mirror', 'metalink', 'keyring'].forEach(optString);
  ['withRecommends', 'updates', 'noVerify'].forEach(optBool);

  if (typeof r.release === 'string') {
    if (dist === 'debian') {
      try {
        findRelease(r.release);
      } catch (e) {
        fail('release', 'a Debian release', r.release, (e as UsageError).hint);
      }
    } else {
      try {
        fedoraRelease(r.release);
      } catch (e) {
        fail('release', `a Fedora release number (${FEDORA_OLDEST}-${FEDORA_CURRENT}) or "rawhide"`, r.release, (e as UsageError).hint);
      }
    }
  }
  if (typeof r.variant === 'string' && dist === 'debian') {
    try {
      findVariant(r.variant);
    } catch (e) {
      fail('variant', 'a Debian variant', r.variant, (e as UsageError).hint);
    }
  }
  if (typeof r.variant === 'string' && dist === 'fedora' && !(FEDORA_VARIANTS as readonly string[]).includes(r.variant)) {
    fail('variant', `a Fedora variant (${FEDORA_VARIANTS.join(', ')})`, r.variant);
  }
  for (const f of ['mirror', 'metalink']) {
    if (typeof r[f] === 'string' && !/^(https?|file):\/\/\S+$/.test(r[f] as string)) fail(f, 'an http://, https:// or file:// URL', r[f]);
  }
  if (r.metalink !== undefined && dist !== 'fedora') fail('metalink', 'no metalink (Fedora only)', r.metalink);
  if (typeof r.keyring === 'string') check('keyring', checkReadableFile(r.keyring), r.keyring);
  stringList('components', r.components, dist === 'debian' ? new RegExp(`^(${COMPONENTS.join('|')})$`) : /^\S+$/, dist === 'debian' ? `a component (${COMPONENTS.join(', ')})` : 'a component name');
  stringList('include', r.include, PACKAGE, 'a package name');
  stringList('exclude', r.exclude, PACKAGE, 'a package name');

  if (r.post !== undefined) {
    if (!Array.isArray(r.post)) fail('post', 'an array of post steps', r.post);
    (r.post as unknown[]).forEach((s, i) => validateStep(s, `post[${i}]`, fail, check, stringList));
  }
  return r as unknown as Recipe;
}

type Fail = (field: string, expected: string, got: unknown, hint?: string) => never;
type Check = (field: string, bad: string | undefined, got: unknown, hint?: string) => void;
type List = (f: string, v: unknown, re: RegExp, what: string) => void;

function validateStep(input: unknown, at: string, fail: Fail, check: Check, list: List): void {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail(at, 'a post step object with a `kind`', input);
  const s = input as Record<string, unknown>;
  const kinds = Object.keys(STEP_FIELDS);
  if (typeof s.kind !== 'string' || !kinds.includes(s.kind)) fail(`${at}.kind`, `one of ${kinds.join(', ')}`, s.kind);
  const kind = s.kind as PostStep['kind'];
  for (const k of Object.keys(s)) {
    if (k !== 'kind' && !STEP_FIELDS[kind].includes(k)) fail(`${at}.${k}`, `a field of a ${kind} step (${STEP_FIELDS[kind].join(', ') || 'none'})`, undefined);
  }
  const str = (f: string, required: boolean) => {
    if (s[f] === undefined && !required) return false;
    if (typeof s[f] !== 'string' || !s[f]) fail(`${at}.${f}`, 'a non-empty string', s[f]);
    return true;
  };
  const secret = (required: boolean) => {
    if (s.password !== undefined && s.passwordFile !== undefined) fail(`${at}.password`, 'either password or passwordFile, not both', undefined);
    if (s.password !== undefined) {
      if (typeof s.password !== 'string' || !s.password) fail(`${at}.password`, 'a non-empty string', typeof s.password === 'string' ? '' : s.password);
      if (/[\n\r]/.test(s.password as string)) fail(`${at}.password`, 'a password on one line', undefined);
    } else if (s.passwordFile !== undefined) {
      check(`${at}.passwordFile`, checkReadableFile(s.passwordFile), s.passwordFile);
      if (!readFileSync(s.passwordFile as string, 'utf8').split('\n')[0].replace(/\r$/, '')) fail(`${at}.passwordFile`, 'a file whose first line is the password (it is empty)', s.passwordFile);
    } else if (required) {
      fail(`${at}.password`, 'a password or a passwordFile', undefined);
    }
  };
  switch (kind) {
    case 'hostname':
      check(`${at}.hostname`, checkHostname(s.hostname), s.hostname);
      break;
    case 'root-password':
      secret(true);
      break;
    case 'user':
      check(`${at}.name`, checkUserName(s.name), s.name);
      if (s.uid !== undefined && (typeof s.uid !== 'number' || !Number.isInteger(s.uid) || s.uid < 1 || s.uid > 65533)) fail(`${at}.uid`, 'a user id 1-65533', s.uid);
      list(`${at}.groups`, s.groups, GROUP_NAME, 'a group name');
      if (str('shell', false) && !isAbsolute(s.shell as string)) fail(`${at}.shell`, 'an absolute path such as /bin/bash', s.shell);
      secret(false);
      if (s.authorizedKeys !== undefined) check(`${at}.authorizedKeys`, checkKeysFile(s.authorizedKeys), s.authorizedKeys);
      break;
    case 'locale':
      check(`${at}.locale`, checkLocale(s.locale), s.locale);
      break;
    case 'timezone':
      check(`${at}.timezone`, checkTimezone(s.timezone), s.timezone);
      break;
    case 'file':
      if (str('path', true) && (!isAbsolute(s.path as string) || (s.path as string).endsWith('/'))) fail(`${at}.path`, 'an absolute file path inside the tree', s.path);
      if (typeof s.content !== 'string') fail(`${at}.content`, 'a string', s.content);
      if (s.mode !== undefined && (typeof s.mode !== 'number' || !Number.isInteger(s.mode) || s.mode < 0 || s.mode > 0o7777)) {
        fail(`${at}.mode`, 'a file mode number 0-0o7777 (write 0o644 in JavaScript)', s.mode);
      }
      if (str('owner', false) && !/^([a-z_][a-z0-9_-]*|\d+)(:([a-z_][a-z0-9_-]*|\d+))?$/.test(s.owner as string)) fail(`${at}.owner`, 'USER or USER:GROUP', s.owner);
      break;
    case 'services': {
      for (const f of ['enable', 'disable', 'mask']) list(`${at}.${f}`, s[f], UNIT, 'a unit name');
      if (!['enable', 'disable', 'mask'].some((f) => (s[f] as unknown[] | undefined)?.length)) fail(at, 'at least one unit in enable, disable or mask', undefined);
      break;
    }
    case 'command':
      if (typeof s.command === 'string') {
        if (!s.command.trim()) fail(`${at}.command`, 'a non-empty shell command or argv array', s.command);
      } else if (!Array.isArray(s.command) || !s.command.length || s.command.some((a) => typeof a !== 'string')) {
        fail(`${at}.command`, 'a non-empty shell command or argv array of strings', s.command);
      }
      break;
    case 'console-login':
      break;
    case 'sshd':
      if (s.port !== undefined) check(`${at}.port`, checkPort(s.port), s.port);
      if (s.authorizedKeys !== undefined) check(`${at}.authorizedKeys`, checkKeysFile(s.authorizedKeys), s.authorizedKeys);
      if (s.socketActivated !== undefined && typeof s.socketActivated !== 'boolean') fail(`${at}.socketActivated`, 'true or false', s.socketActivated);
      break;
  }
}
