/**
 * nftables rules for a container, rendered as an `nft -f` script (pure).
 *
 * Why the nft command and not netlink from C: a table with NAT chains is a
 * few lines of nft's language but hundreds of lines of hand-built nftnl
 * expressions; `nft -f` applies the whole table in one transaction (all or
 * nothing) and costs ~10 ms, paid only by containers with their own veth,
 * while the interfaces themselves take microseconds over rtnetlink.
 *
 * One table per container (`ip nsbox-NAME`): its end is one `delete table`,
 * whoever runs it (the supervisor, or the guard after kill -9).
 */
import type { PortSpec } from './spec.js';

export interface ContainerRules {
  table: string;
  /** The host-side link the container is reached through (ve-NAME, or vz-ZONE). */
  hostIf: string;
  /** The container's IPv4 address. */
  address: string;
  ports: PortSpec[];
  /** Masquerade the container's traffic that leaves through another link. */
  nat: boolean;
}

export const FORWARD_TABLE = 'nsbox-forward';

/**
 * The container's table. `-p` is a DNAT of the host's own addresses
 * (`fib daddr type local`): in prerouting for connections from elsewhere,
 * in output for the host's own (nspawn's local DNAT); for 127.0.0.1 the
 * host link has route_localnet set and the loopback source is masqueraded
 * to the host end's address, so the container's answer finds its way back.
 */
export function containerTable(r: ContainerRules): string {
  const dnat = r.ports.map((p) => `    fib daddr type local ${p.proto} dport ${p.hostPort} dnat to ${r.address}:${p.containerPort}`);
  const lines = [`table ip ${r.table}`, `delete table ip ${r.table}`, `table ip ${r.table} {`];
  if (dnat.length) {
    lines.push('  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', ...dnat, '  }');
    lines.push('  chain output {', '    type nat hook output priority -100; policy accept;', ...dnat, '  }');
  }
  lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  if (r.nat) lines.push(`    ip saddr ${r.address} oifname != "${r.hostIf}" masquerade`);
  if (dnat.length) lines.push(`    ip saddr 127.0.0.0/8 ip daddr ${r.address} masquerade`);
  lines.push('  }', '}');
  return lines.join('\n') + '\n';
}

/**
 * While nsbox has turned IPv4 forwarding on (it was off), forwarding is
 * limited to nsbox's containers: their own traffic, answers to it, and
 * forwarded ports. The host does not become a router for anything else.
 */
export function forwardTable(): string {
  return [
    `table ip ${FORWARD_TABLE}`, `delete table ip ${FORWARD_TABLE}`, `table ip ${FORWARD_TABLE} {`,
    '  chain forward {', '    type filter hook forward priority filter; policy drop;',
    '    ct state established,related accept', '    ct status dnat accept',
    '    iifname "ve-*" accept', '    iifname "vb-*" accept', '    iifname "vz-*" accept',
    '  }', '}',
  ].join('\n') + '\n';
}
