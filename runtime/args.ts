/**
 * Argument parsing for `nsbox run` (and the commands that take run
 * options). Hand-rolled on purpose: options stop at the first non-option so
 * that `nsbox run -D t ls -la` passes `-la` to ls, as systemd-nspawn does,
 * and the run path loads no CLI library (start-up time is the product).
 */
import { UsageError } from '../errors.js';
import type { RunInput, ConsoleMode, LinkJournal } from './options.js';

interface Spec { key: string; value: boolean; repeat?: boolean; /** The value when the flag is given without `=VALUE` (e.g. --volatile = yes). */ bare?: string }

/** Every run flag: long name → spec; short aliases below. */
export const RUN_FLAGS: Record<string, Spec> = {
  directory: { key: 'directory', value: true },
  machine: { key: 'machine', value: true },
  hostname: { key: 'hostname', value: true },
  boot: { key: 'boot', value: false },
  capability: { key: 'capability', value: true, repeat: true },
  'drop-capability': { key: 'dropCapability', value: true, repeat: true },
  'private-network': { key: 'privateNetwork', value: false },
  'network-veth': { key: 'networkVeth', value: false },
  'network-bridge': { key: 'networkBridge', value: true },
  'network-zone': { key: 'networkZone', value: true },
  'network-macvlan': { key: 'networkMacvlan', value: true, repeat: true },
  'network-ipvlan': { key: 'networkIpvlan', value: true, repeat: true },
  'network-interface': { key: 'networkInterface', value: true, repeat: true },
  port: { key: 'port', value: true, repeat: true },
  bind: { key: 'bind', value: true, repeat: true },
  'bind-ro': { key: 'bindRo', value: true, repeat: true },
  tmpfs: { key: 'tmpfs', value: true, repeat: true },
  'read-only': { key: 'readOnly', value: false },
  'suppress-sync': { key: 'suppressSync', value: false },
  setenv: { key: 'setenv', value: true, repeat: true },
  user: { key: 'user', value: true },
  chdir: { key: 'chdir', value: true },
  console: { key: 'console', value: true },
  quiet: { key: 'quiet', value: false },
  'link-journal': { key: 'linkJournal', value: true },
  // ephemeral runs and overlays (runtime/overlay.ts)
  ephemeral: { key: 'ephemeral', value: false },
  volatile: { key: 'volatile', value: true, bare: 'yes' },
  overlay: { key: 'overlay', value: true, repeat: true },
  'overlay-ro': { key: 'overlayRo', value: true, repeat: true },
  // user namespaces (runtime/userns.ts)
  'private-users': { key: 'privateUsers', value: true, bare: 'yes' },
  'private-users-ownership': { key: 'privateUsersOwnership', value: true },
  debug: { key: 'debug', value: false },
  help: { key: 'help', value: false },
};
const SHORT: Record<string, string> = { x: 'ephemeral', U: 'private-users', D: 'directory', M: 'machine', b: 'boot', E: 'setenv', u: 'user', q: 'quiet', h: 'help', j: 'link-journal', n: 'network-veth', p: 'port' };

export interface ParsedRun extends RunInput { help?: boolean; debug?: boolean; rest?: Record<string, string | boolean | string[]> }

/**
 * Parses run options. `extra` adds command-specific flags (e.g. activate's
 * --listen); their values land in `rest`.
 *
 * @example
 * parseRunArgs(['-D', '/srv/t', '--bind-ro', '/etc/hosts', 'ls', '-la'])
 * // => { directory: '/srv/t', bindRo: ['/etc/hosts'], command: ['ls', '-la'] }
 */
export function parseRunArgs(argv: string[], extra: Record<string, Spec> = {}): ParsedRun {
  const flags = { ...RUN_FLAGS, ...extra };
  const out: Record<string, unknown> = {};
  const rest: Record<string, string | boolean | string[]> = {};
  const set = (spec: Spec, name: string, value: string | boolean) => {
    const target = name in extra ? rest : out;
    if (spec.repeat) ((target[spec.key] as string[]) ??= []).push(value as string);
    else target[spec.key] = value;
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') break;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = flags[name];
      if (!spec) throw new UsageError(`unknown option \`--${name}\``, { hint: 'see `nsbox run --help`' });
      if (spec.value && spec.bare !== undefined && eq < 0) { set(spec, name, spec.bare); continue; }
      if (spec.value) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`option \`--${name}\` needs a value`, { hint: 'see `nsbox run --help`' });
        set(spec, name, v);
      } else {
        if (eq >= 0) {
          const v = a.slice(eq + 1);
          if (!['yes', 'no', 'true', 'false', '1', '0'].includes(v)) throw new UsageError(`option \`--${name}\` takes no value, or yes or no (got \`${v}\`)`);
          set(spec, name, ['yes', 'true', '1'].includes(v));
        } else set(spec, name, true);
      }
      continue;
    }
    // short options, possibly bundled (-bq) or with an attached value (-D/srv)
    for (let j = 1; j < a.length; j++) {
      const long = SHORT[a[j]];
      if (!long) throw new UsageError(`unknown option \`-${a[j]}\``, { hint: 'see `nsbox run --help`' });
      const spec = flags[long];
      if (long === 'link-journal') {
        // -j alone means --link-journal=try-guest, as in systemd-nspawn
        set(spec, long, 'try-guest');
        continue;
      }
      if (long === 'private-users') {
        // -U means --private-users=pick --private-users-ownership=auto, as in systemd-nspawn
        set(spec, long, 'pick');
        continue;
      }
      if (spec.value) {
        const v = j + 1 < a.length ? a.slice(j + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`option \`-${a[j]}\` needs a value`, { hint: 'see `nsbox run --help`' });
        set(spec, long, v);
        break;
      }
      set(spec, long, true);
    }
  }
  out.command = argv.slice(i);
  if (Object.keys(rest).length) out.rest = rest;
  return out as ParsedRun;
}

export function asConsole(v: string | undefined): ConsoleMode | undefined { return v as ConsoleMode | undefined; }
export function asLinkJournal(v: string | undefined): LinkJournal | undefined { return v as LinkJournal | undefined; }

export const RUN_HELP = `Usage: nsbox run [OPTIONS] [--] [COMMAND [ARGS...]]

Run a command (default: root's login shell) in a distribution tree, isolated
in new PID, mount, IPC, UTS and cgroup namespaces, as systemd-nspawn does.

  -D, --directory=DIR        tree to run (default: the image -M names, else the current directory)
  -M, --machine=NAME         machine name (default: the directory's name); without -D, runs the
                             image NAME from /var/lib/machines (nsbox import, nsbox list --all)
      --hostname=NAME        hostname inside (default: the machine name)
  -b, --boot                 boot the tree's init; ARGS go to init (e.g. 3)
      --capability=CAPS      add capabilities (comma-separated, or "all")
      --drop-capability=CAPS remove capabilities from the default set
      --private-network      own network namespace with only lo (up)
  -n, --network-veth         a veth pair: ve-NAME on the host, host0 inside,
                             both addressed (a free /28), outbound NAT
      --network-bridge=BR    a veth whose host end (vb-NAME) joins bridge BR
      --network-zone=ZONE    a veth on bridge vz-ZONE, shared by the zone's
                             containers; made by the first, removed with the last
      --network-macvlan=IF   a macvlan (mv-IF) on host interface IF (repeatable)
      --network-ipvlan=IF    an ipvlan (iv-IF) on host interface IF (repeatable)
      --network-interface=IF move host interface IF in; it returns at the end
  -p, --port=[PROTO:]HOST[:CONT]  forward host port HOST (tcp or udp; default
                             tcp) to the container (-n or --network-zone)
      --bind=SRC[:DST[:OPTS]] bind-mount a host path (read-write); OPTS:
                             rbind, norbind, idmap, noidmap (with -U)
      --bind-ro=SRC[:DST]    bind-mount a host path read-only
      --tmpfs=PATH[:OPTS]    mount a tmpfs (default mode=0755)
      --read-only            mount the tree read-only
      --suppress-sync[=yes]  sync, fsync, fdatasync, syncfs and sync_file_range
                             succeed without doing anything (fast builds;
                             a crash may lose what they would have flushed)
  -E, --setenv=VAR=VALUE     set an environment variable (repeatable)
  -u, --user=USER            run the command as USER from the tree's passwd
      --chdir=DIR            working directory inside
      --console=MODE         interactive | read-only | passive | pipe
                             (default: interactive on a terminal, else pipe)
  -j, --link-journal=MODE    no | host | guest | try-host | try-guest | auto
                             (-j alone: try-guest)
  -x, --ephemeral            run on a throw-away overlay of the tree (a tmpfs
                             upper layer: writes are lost at exit, the tree
                             never changes)
      --volatile[=MODE]      yes (tmpfs root, the tree's /usr read-only) |
                             state (tree read-only, tmpfs /var) | overlay
                             (tmpfs overlay over the tree) | no
      --overlay=LOWER[:…]:UPPER:DEST
                             overlay host directories on DEST ("+" prefix:
                             inside the tree; empty UPPER: a tmpfs)
      --overlay-ro=LOWER[:…]:DEST
                             the same, read-only
  -U                         --private-users=pick --private-users-ownership=auto
      --private-users=MODE   pick | UID[:COUNT] | identity | yes | no: root
                             inside is an unprivileged uid range outside
      --private-users-ownership=MODE
                             auto | map (idmapped mounts) | chown | off
  -q, --quiet                no status messages
      --debug                show stack traces for internal errors
  -h, --help                 show this help

In interactive mode, press Ctrl-] three times within a second to kill the
container. The exit status is the command's (128+N for signal N); nsbox's
own failures exit 125, a command that cannot be executed 126, and a command
not found 127.
`;
