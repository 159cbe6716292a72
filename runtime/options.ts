/**
 * One place that turns what a user gave (CLI flags or API fields) into
 * validated RunOptions. Errors name the option and the value received.
 */
import { statSync, realpathSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { DEFAULT_CAPS, parseCapabilities, CAPABILITIES } from './caps.js';
import { normalizeNetwork, type NetworkInput, type NetworkOptions } from './net/spec.js';
import { findImage, IMAGE_DIRS } from './images.js';

export type ConsoleMode = 'interactive' | 'read-only' | 'passive' | 'pipe';
export type LinkJournal = 'no' | 'host' | 'guest' | 'try-host' | 'try-guest' | 'auto';

/** What a caller may pass: every field optional, strings as on the command line. */
export interface RunInput extends NetworkInput {
  /** Tree to run (`-D`); default: the image named by `machine`, else the current directory. */
  directory?: string;
  /** Machine name (`-M`); default: the directory's name. Without `directory`, the image of that name (/var/lib/machines/NAME). */
  machine?: string;
  /** Hostname inside (`--hostname`); default: the machine name. */
  hostname?: string;
  /** Boot the tree's init (`-b`). `command` then holds init's arguments. */
  boot?: boolean;
  capability?: string[];
  dropCapability?: string[];
  privateNetwork?: boolean;
  /** `SRC[:DST]` specs or objects. */
  bind?: (string | { source: string; dest?: string })[];
  bindRo?: (string | { source: string; dest?: string })[];
  /** `PATH[:OPTS]` specs. */
  tmpfs?: string[];
  readOnly?: boolean;
  /** Make sync(2), fsync(2) and relatives succeed without doing anything (`--suppress-sync=yes`). */
  suppressSync?: boolean;
  /** `VAR=VALUE` entries. */
  setenv?: string[] | Record<string, string>;
  user?: string;
  chdir?: string;
  console?: ConsoleMode;
  quiet?: boolean;
  linkJournal?: LinkJournal;
  /** Command and arguments (or init arguments with `boot`). */
  command?: string[];
  /** Run on a throw-away overlay of the tree (`-x`). */
  ephemeral?: boolean;
  /** `--volatile=yes|state|overlay|no`. */
  volatile?: string;
  /** `LOWER[:LOWER…]:UPPER:DEST` specs (`--overlay`), and read-only ones (`--overlay-ro`, every path a lower layer). */
  overlay?: string[];
  overlayRo?: string[];
  /** `--private-users=pick|yes|identity|no|UID[:COUNT]` (`-U` = pick). */
  privateUsers?: string;
  /** `--private-users-ownership=auto|map|chown|off`. */
  privateUsersOwnership?: string;
  /** Listening sockets to pass as fds 3… (socket activation). */
  listenFds?: number[];
  listenFdNames?: string[];
}

export interface BindSpec { source: string; dest: string; readonly: boolean; /** `:idmap`: host ids show unshifted inside a -U container (an idmapped mount). */ idmap?: boolean; /** `:norbind`. */ norbind?: boolean }

export type VolatileMode = 'no' | 'yes' | 'state' | 'overlay';
/**
 * An overlay mount (`--overlay`, `--overlay-ro`). Lower paths are absolute
 * host paths, or container paths marked `inTree` ("+" on the command line).
 */
export interface OverlaySpec {
  lowers: { path: string; inTree: boolean }[];
  /** The writable top layer: a host or tree path; `tmpfs` for an empty UPPER; none when read-only. */
  upper?: { path: string; inTree: boolean } | 'tmpfs';
  dest: string;
  readonly: boolean;
}
export type UsernsOwnership = 'auto' | 'map' | 'chown' | 'off';
/** A user namespace: `pick` chooses a free 65536-id range (runtime/userns.ts); `tree` takes the tree root's owner. */
export interface UsernsSpec { mode: 'pick' | 'tree' | 'fixed'; shift?: number; count: number; ownership: UsernsOwnership }
export interface TmpfsSpec { dest: string; options: string }

/** Validated options: everything resolved, nothing optional that has a default. */
export interface RunOptions {
  directory: string;
  machine: string;
  /** The name was derived from the directory (no -M): if it is taken, a free `NAME-2`, `NAME-3`… is used. */
  machineAuto: boolean;
  hostname: string;
  /** The hostname follows the machine name (no --hostname). */
  hostnameAuto: boolean;
  boot: boolean;
  capabilities: bigint;
  privateNetwork: boolean;
  /** network: links beyond lo (-n, --network-*, -p); implies privateNetwork. */
  network?: NetworkOptions;
  binds: BindSpec[];
  tmpfs: TmpfsSpec[];
  readOnly: boolean;
  suppressSync: boolean;
  env: string[];
  user?: string;
  chdir?: string;
  console: ConsoleMode;
  quiet: boolean;
  linkJournal: LinkJournal;
  command: string[];
  listenFds: number[];
  listenFdNames: string[];
  /** `-x`: a tmpfs overlay over the tree, gone at exit. */
  ephemeral: boolean;
  volatile: VolatileMode;
  overlays: OverlaySpec[];
  /** Private users (`-U`, `--private-users`); undefined: the host's ids. */
  userns?: UsernsSpec;
}

const CONSOLE_MODES: ConsoleMode[] = ['interactive', 'read-only', 'passive', 'pipe'];
const LINK_JOURNAL: LinkJournal[] = ['no', 'host', 'guest', 'try-host', 'try-guest', 'auto'];
const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOSTNAME = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/;

function parseBind(spec: string | { source: string; dest?: string }, flag: string, readonly: boolean): BindSpec {
  let source: string, dest: string;
  let idmap = false, norbind = false;
  if (typeof spec === 'string') {
    if (!spec || spec.startsWith(':')) throw new UsageError(`malformed ${flag} \`${spec}\``, { hint: `use ${flag} SRC[:DST] with absolute paths` });
    const parts = spec.split(':');
    if (parts.length > 3) throw new UsageError(`malformed ${flag} \`${spec}\``, { hint: `use ${flag} SRC[:DST] with absolute paths` });
    source = parts[0];
    dest = parts[1] || parts[0];
    for (const o of parts.length === 3 ? parts[2].split(',') : []) {
      if (!['rbind', 'norbind', 'idmap', 'noidmap', ''].includes(o)) {
        throw new UsageError(`unknown mount option \`${o}\` in ${flag} \`${spec}\``, { hint: 'options are rbind, norbind, idmap or noidmap' });
      }
      if (o === 'idmap') idmap = true;
      if (o === 'noidmap') idmap = false;
      if (o === 'norbind') norbind = true;
      if (o === 'rbind') norbind = false;
    }
  } else {
    source = spec.source;
    dest = spec.dest ?? spec.source;
  }
  if (!isAbsolute(source) || !isAbsolute(dest)) {
    throw new UsageError(`malformed ${flag} \`${typeof spec === 'string' ? spec : source}\`: paths must be absolute`, { hint: `use ${flag} /host/path[:/container/path]` });
  }
  try {
    statSync(source);
  } catch {
    throw new UsageError(`cannot bind \`${source}\` (${flag}): no such file or directory on the host`, { hint: 'create it first or fix the path' });
  }
  return { source: resolve(source), dest: resolve(dest), readonly, ...(idmap ? { idmap } : {}), ...(norbind ? { norbind } : {}) };
}

const VOLATILE: VolatileMode[] = ['no', 'yes', 'state', 'overlay'];
const OWNERSHIP: UsernsOwnership[] = ['auto', 'map', 'chown', 'off'];

/**
 * `--overlay=LOWER[:LOWER…]:UPPER:DEST` as systemd-nspawn reads it: with two
 * paths the second is both the top layer and the mount point; "+" makes a
 * source path relative to the tree; an empty UPPER is a fresh tmpfs (gone
 * with the container); relative host paths are taken from the working
 * directory. `--overlay-ro` stacks every source path read-only.
 */
function parseOverlay(spec: string, readonly: boolean, cwd: string): OverlaySpec {
  const flag = readonly ? '--overlay-ro' : '--overlay';
  // "\:" embeds a colon, as in nspawn
  const parts = spec.split(/(?<!\\):/).map((p) => p.replace(/\\:/g, ':'));
  if (parts.length < 2) throw new UsageError(`malformed ${flag} \`${spec}\`: it needs at least two paths`, { hint: `use ${flag} LOWER[:LOWER…]:UPPER:DEST` });
  const dest = parts.length === 2 ? parts[1].replace(/^\+/, '') : parts[parts.length - 1];
  if (!isAbsolute(dest)) throw new UsageError(`malformed ${flag} \`${spec}\`: the destination \`${dest}\` must be an absolute path`, { hint: `use ${flag} LOWER[:LOWER…]:UPPER:/container/path` });
  const sources = parts.length === 2 ? parts : parts.slice(0, -1);
  const source = (p: string, upper = false) => {
    if (p.includes(',')) throw new UsageError(`malformed ${flag} \`${spec}\`: path \`${p}\` contains a comma`, { hint: 'rename the directory or bind-mount it elsewhere first' });
    if (p.startsWith('+')) return { path: resolve('/', p.slice(1)), inTree: true };
    const host = resolve(cwd, p);
    if (upper) return { path: host, inTree: false }; // created if missing, as nspawn does
    let st;
    try { st = statSync(host); } catch {
      throw new UsageError(`cannot overlay \`${host}\` (${flag} \`${spec}\`): no such directory on the host`, { hint: 'create it first or fix the path' });
    }
    if (!st.isDirectory()) throw new UsageError(`cannot overlay \`${host}\` (${flag} \`${spec}\`): not a directory`, { hint: 'overlay layers are directories' });
    return { path: host, inTree: false };
  };
  if (readonly) return { lowers: sources.map((p) => source(p)), dest: resolve(dest), readonly };
  const top = sources[sources.length - 1];
  const lowers = sources.slice(0, -1).map((p) => source(p));
  if (!lowers.length) throw new UsageError(`malformed ${flag} \`${spec}\`: no lower layer`, { hint: `use ${flag} LOWER:UPPER:DEST` });
  return { lowers, upper: top === '' ? 'tmpfs' : source(top, true), dest: resolve(dest), readonly };
}

/** `--private-users` and `--private-users-ownership`, as systemd-nspawn reads them. */
function parseUserns(value: string | undefined, ownershipIn: string | undefined): UsernsSpec | undefined {
  const ownership = (ownershipIn ?? 'auto') as UsernsOwnership;
  if (!OWNERSHIP.includes(ownership)) {
    throw new UsageError(`invalid --private-users-ownership \`${ownershipIn}\``, { hint: `use one of ${OWNERSHIP.join(', ')}` });
  }
  if (value === undefined || value === 'no' || value === 'false') return undefined;
  if (value === 'pick') return { mode: 'pick', count: 0x10000, ownership };
  if (value === 'yes' || value === 'true') return { mode: 'tree', count: 0x10000, ownership };
  if (value === 'identity') return { mode: 'fixed', shift: 0, count: 0x10000, ownership };
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  const shift = m ? Number(m[1]) : NaN, count = m?.[2] ? Number(m[2]) : 0x10000;
  if (!m || shift > 0xfffffffe || count < 1 || shift + count > 0xffffffff) {
    throw new UsageError(`invalid --private-users \`${value}\``, { hint: 'use pick, identity, yes, no, or UID[:COUNT] (e.g. 1879048192:65536)' });
  }
  return { mode: 'fixed', shift, count, ownership };
}

function imageDirectory(name: string): string {
  const found = findImage(name);
  if (!found) throw new UsageError(`cannot run \`${name}\`: no machine image of that name in ${IMAGE_DIRS.join(', ')}`, { hint: 'import one with `nsbox import FILE NAME`, or pass the tree with -D DIR' });
  return found;
}

function parseTmpfs(spec: string): TmpfsSpec {
  const i = spec.indexOf(':');
  const dest = i < 0 ? spec : spec.slice(0, i);
  const options = i < 0 ? 'mode=0755' : spec.slice(i + 1);
  if (!isAbsolute(dest)) throw new UsageError(`malformed --tmpfs \`${spec}\`: the path must be absolute`, { hint: 'use --tmpfs /path[:OPTIONS]' });
  return { dest: resolve(dest), options };
}

function parseEnv(setenv: RunInput['setenv']): string[] {
  if (!setenv) return [];
  const list = Array.isArray(setenv) ? setenv : Object.entries(setenv).map(([k, v]) => `${k}=${v}`);
  for (const e of list) {
    const eq = e.indexOf('=');
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.slice(0, eq))) {
      throw new UsageError(`malformed -E \`${e}\``, { hint: 'use -E VAR=VALUE' });
    }
  }
  return list;
}

/**
 * Validates a RunInput. `isTTY` says whether stdin and stdout are terminals
 * (it picks the default console mode, as systemd-nspawn does).
 *
 * @example
 * normalizeRunOptions({ directory: '/srv/deb', command: ['/bin/true'] }, { isTTY: false })
 */
export function normalizeRunOptions(input: RunInput, ctx: { isTTY: boolean; cwd?: string }): RunOptions {
  // -M NAME without -D runs the image of that name, as systemd-nspawn does (runtime/images.ts)
  const directory = input.directory === undefined && input.machine !== undefined ? imageDirectory(input.machine) : resolve(ctx.cwd ?? process.cwd(), input.directory ?? '.');
  let st;
  try {
    st = statSync(directory);
  } catch {
    throw new UsageError(`directory \`${directory}\` does not exist`, { hint: 'pass the tree with -D DIR (bootstrap one with `nsbox bootstrap debian DIR`)' });
  }
  if (!st.isDirectory()) throw new UsageError(`\`${directory}\` is not a directory`, { hint: 'pass the tree with -D DIR' });
  const real = realpathSync(directory);
  if (real === '/') throw new UsageError('refusing to run the host\'s own root directory as a container', { hint: 'pass a distribution tree with -D DIR' });

  const machine = input.machine ?? basename(real).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') ?? 'nsbox';
  if (!MACHINE_NAME.test(machine)) {
    throw new UsageError(`invalid machine name \`${machine}\``, { hint: 'use -M NAME with letters, digits, "-", "_" and "." (at most 64)' });
  }
  const hostname = input.hostname ?? machine;
  if (!HOSTNAME.test(hostname) || hostname.length > 64) {
    throw new UsageError(`invalid hostname \`${hostname}\``, { hint: 'use --hostname with letters, digits and "-" (at most 64 characters)' });
  }

  const consoleMode = input.console ?? (ctx.isTTY ? 'interactive' : 'pipe');
  if (!CONSOLE_MODES.includes(consoleMode)) {
    throw new UsageError(`invalid --console \`${consoleMode}\``, { hint: `use one of ${CONSOLE_MODES.join(', ')}` });
  }
  if ((consoleMode === 'interactive' || consoleMode === 'read-only') && !ctx.isTTY) {
    throw new UsageError(`--console=${consoleMode} needs a terminal on stdin and stdout`, { hint: 'use --console=pipe or --console=passive when not on a terminal' });
  }
  const linkJournal = input.linkJournal ?? 'auto';
  if (!LINK_JOURNAL.includes(linkJournal)) {
    throw new UsageError(`invalid --link-journal \`${linkJournal}\``, { hint: `use one of ${LINK_JOURNAL.join(', ')}` });
  }

  const boot = !!input.boot;
  if (boot && input.user) throw new UsageError('--user cannot be combined with --boot', { hint: 'log in as that user on the console instead' });
  if (boot && input.chdir) throw new UsageError('--chdir cannot be combined with --boot', { hint: 'init always starts in /' });
  if (input.chdir !== undefined && !isAbsolute(input.chdir)) throw new UsageError(`--chdir \`${input.chdir}\` must be an absolute path`);
  if (input.user !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(input.user)) {
    throw new UsageError(`invalid user name \`${input.user}\``, { hint: 'use -u NAME or a numeric uid' });
  }

  const network = normalizeNetwork(input);
  const privateNetwork = !!input.privateNetwork || !!network;

  let caps = DEFAULT_CAPS;
  for (const c of input.capability ?? []) caps |= parseCapabilities(c, '--capability');
  for (const c of input.dropCapability ?? []) caps &= ~parseCapabilities(c, '--drop-capability');
  // nspawn hands CAP_NET_ADMIN to containers with their own network.
  if (privateNetwork && !(input.dropCapability ?? []).some((c) => /(^|,)(cap_)?net_admin(,|$)/i.test(c))) {
    caps |= 1n << BigInt(CAPABILITIES.CAP_NET_ADMIN);
  }

  const binds = [
    ...(input.bind ?? []).map((b) => parseBind(b, '--bind', false)),
    ...(input.bindRo ?? []).map((b) => parseBind(b, '--bind-ro', true)),
  ];
  const tmpfs = (input.tmpfs ?? []).map(parseTmpfs);
  const listenFds = input.listenFds ?? [];
  const listenFdNames = input.listenFdNames ?? [];
  if (listenFdNames.length && listenFdNames.length !== listenFds.length) {
    throw new UsageError('the number of socket names does not match the number of sockets');
  }
  const ephemeral = !!input.ephemeral;
  const volatile = (input.volatile ?? 'no') as VolatileMode;
  if (!VOLATILE.includes(volatile)) throw new UsageError(`invalid --volatile \`${input.volatile}\``, { hint: `use one of ${VOLATILE.join(', ')}` });
  if (ephemeral && volatile !== 'no') throw new UsageError(`--ephemeral cannot be combined with --volatile=${volatile}`, { hint: 'both make the tree\'s changes temporary: pick one' });
  const overlays = [
    ...(input.overlay ?? []).map((o) => parseOverlay(o, false, ctx.cwd ?? process.cwd())),
    ...(input.overlayRo ?? []).map((o) => parseOverlay(o, true, ctx.cwd ?? process.cwd())),
  ];
  const userns = parseUserns(input.privateUsers, input.privateUsersOwnership);
  if (!userns && binds.some((b) => b.idmap)) throw new UsageError('the bind option `idmap` needs a user namespace', { hint: 'add -U (or --private-users=pick), or drop :idmap' });
  return {
    ephemeral, volatile, overlays, ...(userns ? { userns } : {}),
    directory: real, machine, machineAuto: input.machine === undefined, hostname, hostnameAuto: input.hostname === undefined, boot, capabilities: caps, privateNetwork, ...(network ? { network } : {}),
    binds, tmpfs, readOnly: !!input.readOnly, suppressSync: !!input.suppressSync, env: parseEnv(input.setenv), user: input.user, chdir: input.chdir,
    console: consoleMode, quiet: !!input.quiet, linkJournal, command: input.command ?? [], listenFds, listenFdNames,
  };
}

