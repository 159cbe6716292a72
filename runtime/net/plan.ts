/**
 * The network plan: plain data saying which links nsbox makes on the host,
 * how the container's side is addressed, and which rules it needs. Built
 * from validated options and the subnet the caller allocated; executed by
 * runtime/net/setup.ts; the container-side part (`netifs`) goes into the
 * ContainerPlan for the native child (spawn.c configure_netifs).
 */
import type { NetworkOptions, PortSpec } from './spec.js';
import { CONTAINER_VETH, hostVethName, ipvlanName, macvlanName, zoneBridgeName } from './names.js';
import { fmt4, formatPrefix, vethAddresses, type Prefix } from './address.js';

/** One interface the child brings up inside (and addresses, when nsbox knows how). */
export interface ContainerNetif { name: string; address?: string; prefix?: number; gateway?: string }

export interface VethPlan {
  hostIf: string;
  containerIf: string;
  /** The host end's address (-n only; on a bridge or zone the host end has none). */
  hostAddress?: string;
  prefix?: number;
  /** Existing bridge to join (--network-bridge). */
  bridge?: string;
  /** nsbox's zone bridge: made with the first container, removed with the last. */
  zone?: { name: string; bridge: string; subnet: string; address: string };
}

export interface NetworkPlan {
  veth?: VethPlan;
  macvlan: { parent: string; name: string }[];
  ipvlan: { parent: string; name: string }[];
  /** Host interfaces moved in, and out again at the end. */
  interfaces: string[];
  ports: PortSpec[];
  /** Outbound NAT for the container's own address (veth and zone). */
  nat: boolean;
  /** The nft table of this container when it needs one. */
  table?: string;
  /** The container's IPv4 address nsbox gave it, if any. */
  address?: string;
  netifs: ContainerNetif[];
}

/** What the caller allocated on the host (runtime/net/setup.ts). */
export interface Allocation {
  /** The veth's /28 (-n). */
  subnet?: Prefix;
  /** The zone's /24 and this container's address in it. */
  zoneSubnet?: Prefix;
  zoneAddress?: string;
}

/**
 * @example
 * buildNetworkPlan({ veth: true, macvlan: [], ipvlan: [], interfaces: [], ports: [] }, 'web', { subnet: parsePrefix('10.1.2.0/28') })
 * // => { veth: { hostIf: 've-web', containerIf: 'host0', hostAddress: '10.1.2.1', prefix: 28 }, nat: true,
 * //      netifs: [{ name: 'host0', address: '10.1.2.2', prefix: 28, gateway: '10.1.2.1' }], ... }
 */
export function buildNetworkPlan(net: NetworkOptions, machine: string, alloc: Allocation): NetworkPlan {
  const netifs: ContainerNetif[] = [];
  let veth: VethPlan | undefined;
  let address: string | undefined;
  if (net.veth) {
    const bridged = net.bridge !== undefined || net.zone !== undefined;
    veth = { hostIf: hostVethName(machine, bridged), containerIf: CONTAINER_VETH };
    if (net.bridge !== undefined) {
      veth.bridge = net.bridge;
      netifs.push({ name: CONTAINER_VETH }); // the bridge's network addresses it (DHCP or by hand), as with nspawn
    } else if (net.zone !== undefined) {
      if (!alloc.zoneSubnet || !alloc.zoneAddress) throw new Error('zone without an allocated subnet');
      const gw = fmt4(alloc.zoneSubnet.network + 1);
      veth.zone = { name: net.zone, bridge: zoneBridgeName(net.zone), subnet: formatPrefix(alloc.zoneSubnet), address: gw };
      address = alloc.zoneAddress;
      netifs.push({ name: CONTAINER_VETH, address, prefix: alloc.zoneSubnet.length, gateway: gw });
    } else {
      if (!alloc.subnet) throw new Error('veth without an allocated subnet');
      const a = vethAddresses(alloc.subnet);
      veth.hostAddress = a.host;
      veth.prefix = a.prefix;
      address = a.container;
      netifs.push({ name: CONTAINER_VETH, address, prefix: a.prefix, gateway: a.host });
    }
  }
  const macvlan = net.macvlan.map((parent) => ({ parent, name: macvlanName(parent) }));
  const ipvlan = net.ipvlan.map((parent) => ({ parent, name: ipvlanName(parent) }));
  for (const l of [...macvlan, ...ipvlan]) netifs.push({ name: l.name });
  for (const i of net.interfaces) netifs.push({ name: i });
  const nat = !!address;
  return {
    veth, macvlan, ipvlan, interfaces: net.interfaces, ports: net.ports, nat, address,
    table: nat || net.ports.length ? `nsbox-${machine}` : undefined, netifs,
  };
}

/**
 * A drop-in for the container's own networkd: its 80-container-host0.network
 * stays in charge of host0 (link-local addressing, LLDP), with the static
 * address nsbox gave instead of a DHCP client that no host server would
 * answer (nspawn relies on the host's networkd for that; nsbox needs none).
 */
export function networkdDropin(n: ContainerNetif): { dir: string; path: string; content: string } | undefined {
  if (!n.address) return undefined;
  const dir = `/run/systemd/network/80-container-${n.name}.network.d`;
  return {
    dir, path: `${dir}/50-nsbox.conf`,
    content: `# written by nsbox: the address it gave ${n.name}\n[Network]\nDHCP=no\nAddress=${n.address}/${n.prefix}\n${n.gateway ? `Gateway=${n.gateway}\n` : ''}`,
  };
}
