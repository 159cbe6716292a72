/**
 * Executes a network plan on the host: checks and allocations before the
 * container exists (`prepareNetwork`: every user error is raised here,
 * before anything is created), links and rules at the rendezvous once its
 * network namespace exists (`attach`, a supervise.ts HostStep), and the
 * undoing of all of it (`detach`, `close`) — the same C clean-up
 * (net.c nsbox_net_cleanup_argv) that a guard process runs if nsbox is
 * killed.
 *
 * State shared between containers lives in /run/nsbox/net/<netns inode>/
 * (a lock, leases of subnets and addresses, claims of host ports, and the
 * references to IPv4 forwarding): per network namespace, because addresses,
 * ports and sysctls are.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { SetupError } from '../../errors.js';
import { native, type NetNative } from '../native.js';
import { parsePrefix, pickSubnet, zoneAddress, formatPrefix, type Prefix } from './address.js';
import { findLink, parseDump, usedPrefixes, type HostState } from './host.js';
import { hostVethName } from './names.js';
import { containerTable, forwardTable } from './nft.js';
import { buildNetworkPlan, type Allocation, type NetworkPlan } from './plan.js';
import type { NetworkOptions } from './spec.js';

const STATE_ROOT = '/run/nsbox/net';
const ALIAS = 'nsbox:';

interface Owner { pid: number; token: string; rest: string }

function readOwner(file: string): Owner | undefined {
  try {
    const [pid, token, ...rest] = readFileSync(file, 'utf8').trim().split(' ');
    return { pid: Number(pid), token, rest: rest.join(' ') };
  } catch { return undefined; }
}
function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}
const errName = (e: number) => { try { return getSystemErrorName(e); } catch { return `errno ${-e}`; } };

function findNft(): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) if (d && existsSync(`${d}/nft`)) return `${d}/nft`;
  return undefined;
}

/** Runs `nft -f -`; rejects with the first line nft printed. */
async function runNft(nft: string, script: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(nft, ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    child.on('error', (e) => reject(new SetupError(`cannot run \`${nft}\`: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SetupError(`cannot set up the container's nftables rules: ${err.split('\n').find((l) => l.trim()) ?? `nft exited with ${code}`}`, { hint: 'check that the kernel has nf_tables with NAT (nft list ruleset)' }));
    });
    child.stdin!.end(script);
  });
}

/**
 * A container's network on the host. `plan.netifs` goes into the container
 * plan; `attach` runs at the rendezvous; `detach` after each run of the
 * container (a reboot attaches again); `close` at the very end.
 */
export class HostNetwork {
  private nsfd = -1;
  private guard?: { fd: number; pid: number };
  private attached = false;
  private readonly lockPath: string;

  constructor(
    readonly plan: NetworkPlan,
    private readonly nat: NetNative,
    private readonly dir: string,
    private readonly token: string,
    private readonly nft: string | undefined,
    /** Files this container holds (leases, port claims). */
    private readonly files: string[],
    /** Host ifindex of each interface moved in (--network-interface). */
    private readonly moved: { index: number; name: string }[],
    private readonly zoneLease?: string,
  ) { this.lockPath = `${dir}/lock`; }

  private get forwardRef(): string { return `${process.pid}-${this.token}`; }
  private get usesForward(): boolean { return !!this.plan.table; }

  /** Guard entries (net.c): everything attach makes; with `files`, the leases and claims too. */
  entries(files: boolean): string[] {
    const p = this.plan;
    const out = this.moved.map((m) => `M${m.index}\t${m.name}`);
    if (p.veth) out.push(`L${p.veth.hostIf}\t${ALIAS}${this.token}`);
    if (p.veth?.zone) out.push(`Z${p.veth.zone.bridge}\t${this.lockPath}\t${this.zoneLease ?? ''}`);
    if (p.table) out.push(`N${p.table}`);
    if (this.usesForward) out.push(`F${this.dir}/forward\t${this.forwardRef}\t${this.lockPath}`);
    if (files) for (const f of this.files) out.push(`f${f}\t${this.token}`);
    if (files) out.push(`P${this.dir}`);
    return out;
  }

  private withLock<T>(fn: () => T): T {
    const fd = this.nat.lock(this.lockPath);
    if (fd < 0) throw new SetupError(`cannot lock \`${this.lockPath}\`: ${errName(fd)}`);
    try { return fn(); } finally { closeSync(fd); }
  }

  private check(r: number, what: string, hint?: string): number {
    if (r < 0) throw new SetupError(`cannot ${what}: ${errName(r)}`, { hint });
    return r;
  }

  /** The host step: links into the new network namespace of pid, addresses, rules. */
  async attach(pid: number): Promise<void> {
    const p = this.plan, nat = this.nat;
    this.nsfd = openSync(`/proc/${pid}/ns/net`, 'r');
    this.attached = true;
    // The guard first: from here on a kill -9 of nsbox leaves nothing behind.
    this.guard = nat.guard(this.entries(true), this.nsfd);

    let nftDone: Promise<void> | undefined;
    let flipForward = false;
    if (p.table && this.nft && p.address) {
      // IPv4 forwarding: on while any such container runs; who turned it on keeps what it was.
      this.withLock(() => {
        writeFileSync(`${this.dir}/forward/${this.forwardRef}`, `${this.token}\n`);
        const orig = `${this.dir}/forward/orig`;
        if (!existsSync(orig) && readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '0') {
          writeFileSync(orig, '0');
          flipForward = true;
        }
      });
      const hostIf = p.veth?.zone?.bridge ?? p.veth!.hostIf;
      const script = containerTable({ table: p.table, hostIf, address: p.address, ports: p.ports, nat: p.nat }) + (flipForward ? forwardTable() : '');
      nftDone = runNft(this.nft, script);
      nftDone.catch(() => {}); // awaited below
    }

    if (p.veth) {
      const v = p.veth;
      const idx = this.check(nat.veth(v.hostIf, v.containerIf, this.nsfd, `${ALIAS}${this.token}`), `create the veth pair \`${v.hostIf}\``,
        `is there an interface \`${v.hostIf}\` already? (ip link del ${v.hostIf})`);
      if (v.hostAddress) this.check(nat.addAddress(idx, v.hostAddress, v.prefix!), `address \`${v.hostIf}\``);
      if (v.bridge) {
        const br = findLink(this.host(), v.bridge);
        if (!br) throw new SetupError(`cannot join bridge \`${v.bridge}\`: it is gone`);
        this.check(nat.setLink(idx, { up: true, master: br.index }), `add \`${v.hostIf}\` to bridge \`${v.bridge}\``);
      } else if (v.zone) {
        const z = v.zone;
        this.withLock(() => {
          let br = findLink(this.host(), z.bridge);
          if (!br) {
            this.check(nat.newLink('bridge', z.bridge, 0, -1, `nsbox-zone:${z.name}`), `create the zone bridge \`${z.bridge}\``);
            br = findLink(this.host(), z.bridge)!;
            this.check(nat.addAddress(br.index, z.address, parsePrefix(z.subnet).length), `address \`${z.bridge}\``);
            this.check(nat.setLink(br.index, { up: true }), `bring up \`${z.bridge}\``);
          }
          this.check(nat.setLink(idx, { up: true, master: br.index }), `add \`${v.hostIf}\` to zone bridge \`${z.bridge}\``);
        });
      } else {
        this.check(nat.setLink(idx, { up: true }), `bring up \`${v.hostIf}\``);
      }
      // 127.0.0.1:PORT reaches the container: loopback sources may leave through this link only.
      if (p.ports.length) nat.sysctl(`/proc/sys/net/ipv4/conf/${v.zone?.bridge ?? v.hostIf}/route_localnet`, '1');
    }
    for (const [kind, links] of [['macvlan', p.macvlan], ['ipvlan', p.ipvlan]] as const) {
      for (const l of links) {
        const parent = findLink(this.host(), l.parent);
        if (!parent) throw new SetupError(`cannot create a ${kind} on \`${l.parent}\`: it is gone`);
        const r = nat.newLink(kind, l.name, parent.index, this.nsfd, '');
        if (r === -95) throw new SetupError(`cannot create ${kind} \`${l.name}\` on \`${l.parent}\`: this kernel has no ${kind} support`, { hint: `a kernel built with CONFIG_${kind.toUpperCase()}, or use --network-macvlan / -n` });
        this.check(r, `create ${kind} \`${l.name}\` on \`${l.parent}\``);
      }
    }
    for (const m of this.moved) this.check(nat.setLink(m.index, { nsfd: this.nsfd }), `move \`${m.name}\` into the container`);

    if (nftDone) await nftDone;
    if (flipForward) nat.sysctl('/proc/sys/net/ipv4/ip_forward', '1');
  }

  private host(): HostState { return parseDump(this.nat.dump()); }

  /** Undoes what attach made (after the container's first process ended). */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.nat.cleanup(this.entries(false), this.nsfd);
    if (this.nsfd >= 0) { closeSync(this.nsfd); this.nsfd = -1; }
    if (this.guard) {
      try { writeSync(this.guard.fd, 'x'); closeSync(this.guard.fd); } catch { /* guard gone */ }
      native().reap(this.guard.pid);
      this.guard = undefined;
    }
  }

  /** The end: also gives up the leases and port claims, and the state directory once nothing is left in it. */
  close(): void {
    this.detach();
    const dirOk = existsSync(this.dir);
    for (const f of this.files) {
      if (readOwner(f)?.token === this.token) { try { unlinkSync(f); } catch { /* gone */ } }
    }
    if (dirOk) this.nat.cleanup([`P${this.dir}`], -1);
  }
}

const SUBDIRS = ['leases', 'ports', 'forward'];

/** Live owners of the files in dir; dead owners' files are removed (a supervisor and its guard both killed). */
function liveFiles(dir: string, stale: (name: string, o: Owner) => boolean = (_, o) => !alive(o.pid)): Map<string, Owner> {
  const out = new Map<string, Owner>();
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const o = readOwner(`${dir}/${name}`);
    if (!o || stale(name, o)) { try { unlinkSync(`${dir}/${name}`); } catch { /* raced */ } continue; }
    out.set(name, o);
  }
  return out;
}

/**
 * Checks the host for everything the network options need and allocates
 * addresses and ports, before the container exists. Throws the user's
 * error (unknown bridge, port in use, …) with nothing created.
 */
export function prepareNetwork(net: NetworkOptions, machine: string, token: string, warn: (l: string) => void): HostNetwork {
  const nat = native().net;
  const dir = `${STATE_ROOT}/${statSync('/proc/self/ns/net').ino}`;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    return prepareIn(nat, dir, net, machine, token, warn);
  } catch (e) {
    nat.cleanup([`P${dir}`], -1); // nothing was made: leave no state directory either
    throw e;
  }
}

function prepareIn(nat: NetNative, dir: string, net: NetworkOptions, machine: string, token: string, warn: (l: string) => void): HostNetwork {

  let nft = findNft();
  if (!nft && net.ports.length) {
    throw new SetupError('cannot forward ports: the `nft` command is missing', { hint: 'install nftables (apt-get install nftables)' });
  }
  const wantsNat = net.veth && net.bridge === undefined;
  if (!nft && wantsNat) warn('nsbox: warning: no `nft` command, so no outbound NAT: the container reaches the host only (install nftables)');

  const host = parseDump(nat.dump());
  if (net.bridge !== undefined) {
    const br = findLink(host, net.bridge);
    if (!br) throw new SetupError(`cannot join bridge \`${net.bridge}\`: no such interface on the host`, { hint: `create it first (ip link add ${net.bridge} type bridge) or use --network-zone` });
    if (br.kind !== 'bridge') throw new SetupError(`cannot join bridge \`${net.bridge}\`: it is not a bridge (${br.kind || 'a plain'} interface)`, { hint: 'name a bridge, or use --network-zone for one that nsbox makes' });
  }
  for (const [flag, list] of [['--network-macvlan', net.macvlan], ['--network-ipvlan', net.ipvlan], ['--network-interface', net.interfaces]] as const) {
    for (const n of list) {
      const l = findLink(host, n);
      if (!l) throw new SetupError(`cannot use \`${n}\` (${flag}): no such interface on the host`, { hint: 'ip link lists the host\'s interfaces' });
      if (n === 'lo') throw new SetupError(`cannot use \`lo\` (${flag})`, { hint: 'name a network interface of the host' });
    }
  }
  const moved = net.interfaces.map((n) => ({ index: findLink(host, n)!.index, name: n }));

  const hostIf = net.veth ? hostVethName(machine, net.bridge !== undefined || net.zone !== undefined) : undefined;
  if (hostIf && findLink(host, hostIf)) {
    throw new SetupError(`cannot create \`${hostIf}\`: an interface of that name exists on the host`, { hint: `another container of that name? (ip link del ${hostIf})` });
  }
  const zoneBridge = net.zone !== undefined ? `vz-${net.zone}` : undefined;
  if (zoneBridge) {
    const z = findLink(host, zoneBridge);
    if (z && z.kind !== 'bridge') throw new SetupError(`cannot use zone \`${net.zone}\`: \`${zoneBridge}\` exists and is not a bridge`);
  }

  const files: string[] = [];
  let zoneLease: string | undefined;
  const alloc: Allocation = {};
  let lock = nat.lock(`${dir}/lock`);
  for (let i = 0; lock === -2 && i < 10; i++) { mkdirSync(dir, { recursive: true, mode: 0o755 }); lock = nat.lock(`${dir}/lock`); } // pruned meanwhile
  if (lock < 0) throw new SetupError(`cannot lock \`${dir}/lock\`: ${errName(lock)}`);
  try {
    for (const d of SUBDIRS) mkdirSync(`${dir}/${d}`, { recursive: true, mode: 0o755 });
    // Ports: not claimed by another container, not bound by anything on the host.
    const claims = liveFiles(`${dir}/ports`);
    for (const p of net.ports) {
      const name = `${p.proto}-${p.hostPort}`;
      const other = claims.get(name);
      if (other) throw new SetupError(`cannot forward port ${p.proto}:${p.hostPort}: container \`${other.rest}\` forwards it already`, { hint: 'pick another host port with -p HOSTPORT:CONTAINERPORT' });
      const free = nat.portFree(p.proto, p.hostPort);
      if (free < 0) throw new SetupError(`cannot forward port ${p.proto}:${p.hostPort}: it is in use on the host (${errName(free)})`, { hint: 'pick another host port with -p HOSTPORT:CONTAINERPORT' });
    }
    // Addresses: nothing the host routes or has, no other container's lease.
    const zoneOf = (name: string) => name.startsWith('zone-') ? `vz-${name.slice(5)}` : undefined;
    const leases = liveFiles(`${dir}/leases`, (name, o) => {
      const br = zoneOf(name);
      return br ? !findLink(host, br) && !alive(o.pid) : !alive(o.pid);
    });
    const used: Prefix[] = [...usedPrefixes(host)];
    for (const [name, o] of leases) used.push(parsePrefix(name.startsWith('zone-') ? o.rest : name.replace('_', '/')));
    if (net.zone !== undefined) {
      const br = findLink(host, zoneBridge!);
      const brAddr = br && host.addresses.find((a) => a.index === br.index);
      const lease = leases.get(`zone-${net.zone}`);
      const subnet = brAddr ? parsePrefix(`${brAddr.address}/${brAddr.prefix}`) : lease ? parsePrefix(lease.rest) : pickSubnet(24, used, `zone:${net.zone}`);
      if (!subnet) throw new SetupError('cannot find a free private /24 for the zone', { hint: 'every candidate in 10/8, 172.16/12 and 192.168/16 is in use' });
      zoneLease = `${dir}/leases/zone-${net.zone}`;
      if (!brAddr && !lease) writeFileSync(zoneLease, `${process.pid} ${token} ${formatPrefix(subnet)}\n`);
      const taken = [...leases.keys()].filter((n) => n.endsWith('_32')).map((n) => n.slice(0, -3));
      taken.push(...host.addresses.map((a) => a.address));
      const addr = zoneAddress(subnet, taken, machine);
      if (!addr) throw new SetupError(`cannot find a free address in zone \`${net.zone}\` (${formatPrefix(subnet)})`);
      alloc.zoneSubnet = subnet;
      alloc.zoneAddress = addr;
      files.push(`${dir}/leases/${addr}_32`);
    } else if (net.veth && net.bridge === undefined) {
      const subnet = pickSubnet(28, used, `veth:${machine}`);
      if (!subnet) throw new SetupError('cannot find a free private /28 for the veth', { hint: 'every candidate in 10/8, 172.16/12 and 192.168/16 is in use' });
      alloc.subnet = subnet;
      files.push(`${dir}/leases/${formatPrefix(subnet).replace('/', '_')}`);
    }
    for (const p of net.ports) files.push(`${dir}/ports/${p.proto}-${p.hostPort}`);
    for (const f of files) writeFileSync(f, `${process.pid} ${token} ${machine}\n`, { flag: 'wx' });
  } finally {
    closeSync(lock);
  }
  const plan = buildNetworkPlan(net, machine, alloc);
  if (!nft) { plan.nat = false; if (!plan.ports.length) plan.table = undefined; nft = undefined; }
  return new HostNetwork(plan, nat, dir, token, nft, files, moved, zoneLease);
}
