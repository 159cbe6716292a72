/**
 * systemd-nspawn's network flags as validated data: `-n/--network-veth`,
 * `--network-bridge`, `--network-zone`, `--network-macvlan`,
 * `--network-ipvlan`, `--network-interface`, `-p/--port`. Pure: the host is
 * looked at later (runtime/net/setup.ts). Errors name the flag and the value.
 */
import { UsageError } from '../../errors.js';

export interface PortSpec { proto: 'tcp' | 'udp'; hostPort: number; containerPort: number }

/** What the network flags asked for; undefined in RunOptions when none was given. */
export interface NetworkOptions {
  /** A veth pair (`-n`, also implied by --network-bridge and --network-zone). */
  veth: boolean;
  /** Existing host bridge the veth's host end joins. */
  bridge?: string;
  /** Zone: nsbox's own bridge `vz-ZONE`, shared by the zone's containers. */
  zone?: string;
  /** Host interfaces to put a macvlan (`mv-IF`) / ipvlan (`iv-IF`) on. */
  macvlan: string[];
  ipvlan: string[];
  /** Host interfaces moved into the container (and back out at the end). */
  interfaces: string[];
  ports: PortSpec[];
}

export interface NetworkInput {
  networkVeth?: boolean;
  networkBridge?: string;
  networkZone?: string;
  networkMacvlan?: string[];
  networkIpvlan?: string[];
  networkInterface?: string[];
  port?: string[];
}

const IFNAME = /^[^\s/:%]{1,15}$/;

/** Interface names as the kernel takes them (dev_valid_name; nspawn's ifname_valid also refuses ':' and '%'). */
export function validIfname(name: string): boolean {
  return IFNAME.test(name) && name !== '.' && name !== '..' && Buffer.byteLength(name) <= 15;
}

function ifnames(list: string[] | undefined, flag: string): string[] {
  // nspawn takes whitespace-separated lists as well as repeated flags
  const out = (list ?? []).flatMap((v) => v.split(/\s+/).filter(Boolean));
  for (const n of out) {
    if (!validIfname(n)) throw new UsageError(`invalid interface name \`${n}\` for ${flag}`, { hint: 'use a host interface name of at most 15 characters' });
  }
  const dup = out.find((n, i) => out.indexOf(n) !== i);
  if (dup) throw new UsageError(`interface \`${dup}\` is given twice to ${flag}`);
  return out;
}

function parsePortNumber(s: string, spec: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) {
    throw new UsageError(`invalid -p/--port \`${spec}\`: \`${s}\` is not a port number 1-65535`, { hint: 'use -p [tcp:|udp:]HOSTPORT[:CONTAINERPORT]' });
  }
  return Number(s);
}

/**
 * Parses `[PROTO:]HOSTPORT[:CONTAINERPORT]` as nspawn does (tcp by default).
 *
 * @example
 * parsePort('udp:5353:53') // => { proto: 'udp', hostPort: 5353, containerPort: 53 }
 */
export function parsePort(spec: string): PortSpec {
  let rest = spec;
  let proto: 'tcp' | 'udp' = 'tcp';
  const m = /^(tcp|udp):/.exec(spec);
  if (m) { proto = m[1] as 'tcp' | 'udp'; rest = spec.slice(m[0].length); }
  const parts = rest.split(':');
  if (parts.length > 2 || !rest) throw new UsageError(`invalid -p/--port \`${spec}\``, { hint: 'use -p [tcp:|udp:]HOSTPORT[:CONTAINERPORT]' });
  const hostPort = parsePortNumber(parts[0], spec);
  return { proto, hostPort, containerPort: parts.length === 2 ? parsePortNumber(parts[1], spec) : hostPort };
}

/** Validates the network flags; undefined when none was given. */
export function normalizeNetwork(input: NetworkInput): NetworkOptions | undefined {
  const bridge = input.networkBridge;
  const zone = input.networkZone;
  if (bridge !== undefined && !validIfname(bridge)) {
    throw new UsageError(`invalid --network-bridge \`${bridge}\``, { hint: 'name an existing host bridge (at most 15 characters)' });
  }
  if (zone !== undefined && (!zone || !validIfname(`vz-${zone}`))) {
    throw new UsageError(`invalid --network-zone \`${zone}\``, { hint: 'a zone name has at most 12 characters, without spaces, "/" or ":"' });
  }
  if (bridge !== undefined && zone !== undefined) {
    throw new UsageError('--network-bridge and --network-zone cannot be combined', { hint: 'a zone is a bridge of its own: pick one' });
  }
  const macvlan = ifnames(input.networkMacvlan, '--network-macvlan');
  const ipvlan = ifnames(input.networkIpvlan, '--network-ipvlan');
  const interfaces = ifnames(input.networkInterface, '--network-interface');
  const ports = (input.port ?? []).map(parsePort);
  for (let i = 0; i < ports.length; i++) {
    const twin = ports.findIndex((p, j) => j < i && p.proto === ports[i].proto && p.hostPort === ports[i].hostPort);
    if (twin >= 0) {
      throw new UsageError(`overlapping -p/--port \`${input.port![twin]}\` and \`${input.port![i]}\`: host port ${ports[i].proto}:${ports[i].hostPort} is forwarded twice`, { hint: 'forward each host port once' });
    }
  }
  const veth = !!input.networkVeth || bridge !== undefined || zone !== undefined;
  if (ports.length && !veth) {
    throw new UsageError('-p/--port needs -n/--network-veth or --network-zone', { hint: 'ports are forwarded to the address nsbox gives the container\'s veth' });
  }
  if (ports.length && bridge !== undefined) {
    throw new UsageError('-p/--port cannot be combined with --network-bridge', { hint: 'on a bridge of your own the container\'s address is not nsbox\'s to know: use -n or --network-zone' });
  }
  if (!veth && !macvlan.length && !ipvlan.length && !interfaces.length) return undefined;
  return { veth, bridge, zone, macvlan, ipvlan, interfaces, ports };
}
