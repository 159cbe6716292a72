import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { parseRunArgs } from '../../runtime/args.js';
import { normalizeRunOptions } from '../../runtime/options.js';
import { buildPlan } from '../../runtime/plan.js';
import { encodePlan } from '../../runtime/wire.js';
import { parsePort, normalizeNetwork } from '../../runtime/net/spec.js';
import { shortenIfname, siphash24 } from '../../runtime/net/names.js';
import { parsePrefix, pickSubnet, formatPrefix, overlaps, zoneAddress } from '../../runtime/net/address.js';
import { buildNetworkPlan, networkdDropin } from '../../runtime/net/plan.js';
import { containerTable } from '../../runtime/net/nft.js';
import { makeBusyboxTree } from '../helpers/tree.js';

const none = { macvlan: [], ipvlan: [], interfaces: [], ports: [] };

describe('network options and plans (no root needed)', () => {
  it('parses -n, -p and the --network-* flags as nspawn spells them', () => {
    const p = parseRunArgs(['-n', '-p', '8080:80', '--port=udp:53', '--network-macvlan', 'eth1 eth2', '--network-interface=eth3', '/bin/true']);
    assert.equal(p.networkVeth, true);
    assert.deepEqual(p.port, ['8080:80', 'udp:53']);
    const net = normalizeNetwork(p)!;
    assert.deepEqual(net.ports, [{ proto: 'tcp', hostPort: 8080, containerPort: 80 }, { proto: 'udp', hostPort: 53, containerPort: 53 }]);
    assert.deepEqual(net.macvlan, ['eth1', 'eth2']);
    assert.deepEqual(net.interfaces, ['eth3']);
    assert.deepEqual(parseRunArgs(['-np8080', 'x']).port, ['8080']);
  });

  it('parses [PROTO:]HOSTPORT[:CONTAINERPORT] and names the flag and value in errors', () => {
    assert.deepEqual(parsePort('80'), { proto: 'tcp', hostPort: 80, containerPort: 80 });
    assert.deepEqual(parsePort('udp:5353:53'), { proto: 'udp', hostPort: 5353, containerPort: 53 });
    assert.throws(() => parsePort('sctp:80'), /invalid -p\/--port `sctp:80`: `sctp` is not a port number/);
    assert.throws(() => parsePort('0'), /`0` is not a port number 1-65535/);
    assert.throws(() => parsePort('1:2:3'), /invalid -p\/--port `1:2:3`/);
  });

  it('refuses overlapping ports, bad names and combinations nspawn refuses', () => {
    assert.throws(() => normalizeNetwork({ networkVeth: true, port: ['80', 'tcp:80:81'] }), /overlapping -p\/--port `80` and `tcp:80:81`/);
    assert.doesNotThrow(() => normalizeNetwork({ networkVeth: true, port: ['80', 'udp:80'] }));
    assert.throws(() => normalizeNetwork({ port: ['80'] }), /-p\/--port needs -n/);
    assert.throws(() => normalizeNetwork({ networkBridge: 'br0', port: ['80'] }), /cannot be combined with --network-bridge/);
    assert.throws(() => normalizeNetwork({ networkBridge: 'br0', networkZone: 'z' }), /cannot be combined/);
    assert.throws(() => normalizeNetwork({ networkZone: 'a-much-too-long-zone' }), /invalid --network-zone `a-much-too-long-zone`/);
    assert.throws(() => normalizeNetwork({ networkMacvlan: ['a/b'] }), /invalid interface name `a\/b` for --network-macvlan/);
    assert.equal(normalizeNetwork({}), undefined);
    assert.equal(normalizeNetwork({ networkZone: 'z' })!.veth, true, '--network-zone implies a veth');
  });

  it('gives a network option private networking and CAP_NET_ADMIN', () => {
    const tree = makeBusyboxTree();
    try {
      const o = normalizeRunOptions({ directory: tree, networkVeth: true, command: ['/bin/true'] }, { isTTY: false });
      assert.equal(o.privateNetwork, true);
      assert.equal((o.capabilities >> 12n) & 1n, 1n);
      const plain = normalizeRunOptions({ directory: tree, command: ['/bin/true'] }, { isTTY: false });
      assert.equal(plain.network, undefined);
    } finally { rmSync(tree, { recursive: true, force: true }); }
  });

  it('implements SipHash-2-4 and shortens names exactly as nspawn 252', () => {
    const key = Uint8Array.from({ length: 16 }, (_, i) => i);
    assert.equal(siphash24(Uint8Array.from({ length: 15 }, (_, i) => i), key), 0xa129ca6149be45e5n);
    assert.equal(shortenIfname('ve-web'), 've-web');
    assert.equal(shortenIfname('ve-a-rather-long-machine'), 've-a-ratherS_9B'); // what systemd-nspawn 252 printed here
  });

  it('picks a free /28 that overlaps no host route, address or lease, stable per name', () => {
    const a = pickSubnet(28, [], 'veth:web')!;
    assert.equal(a.length, 28);
    assert.ok(overlaps(a, parsePrefix('10.0.0.0/8')));
    assert.deepEqual(pickSubnet(28, [], 'veth:web'), a);
    const used = [parsePrefix(`${formatPrefix({ network: a.network, length: 24 })}`), parsePrefix('0.0.0.0/0')];
    const b = pickSubnet(28, used, 'veth:web')!;
    assert.ok(!overlaps(b, used[0]), formatPrefix(b));
    assert.equal(pickSubnet(28, [parsePrefix('10.0.0.0/8'), parsePrefix('172.16.0.0/12'), parsePrefix('192.168.0.0/16')], 'x'), undefined);
    const z = parsePrefix('10.9.8.0/24');
    const addr = zoneAddress(z, [], 'm')!;
    assert.notEqual(zoneAddress(z, [addr], 'm'), addr);
  });

  it('plans ve-NAME, host0 and their addresses, NAT and a table for -n', () => {
    const plan = buildNetworkPlan({ veth: true, ...none, ports: [{ proto: 'tcp', hostPort: 8080, containerPort: 80 }] }, 'web', { subnet: parsePrefix('10.1.2.16/28') });
    assert.deepEqual(plan.veth, { hostIf: 've-web', containerIf: 'host0', hostAddress: '10.1.2.17', prefix: 28 });
    assert.deepEqual(plan.netifs, [{ name: 'host0', address: '10.1.2.18', prefix: 28, gateway: '10.1.2.17' }]);
    assert.equal(plan.nat, true);
    assert.equal(plan.table, 'nsbox-web');
    const br = buildNetworkPlan({ veth: true, bridge: 'br0', ...none, macvlan: ['eth1'] }, 'web', {});
    assert.deepEqual(br.veth, { hostIf: 'vb-web', containerIf: 'host0', bridge: 'br0' });
    assert.deepEqual(br.netifs, [{ name: 'host0' }, { name: 'mv-eth1' }]);
    assert.equal(br.table, undefined);
    const zone = buildNetworkPlan({ veth: true, zone: 'lab', ...none }, 'a', { zoneSubnet: parsePrefix('10.5.5.0/24'), zoneAddress: '10.5.5.9' });
    assert.deepEqual(zone.veth?.zone, { name: 'lab', bridge: 'vz-lab', subnet: '10.5.5.0/24', address: '10.5.5.1' });
    assert.deepEqual(zone.netifs[0], { name: 'host0', address: '10.5.5.9', prefix: 24, gateway: '10.5.5.1' });
  });

  it('renders the container\'s nft table: DNAT for prerouting and output, masquerade, loopback sources', () => {
    const t = containerTable({ table: 'nsbox-web', hostIf: 've-web', address: '10.1.2.18', nat: true, ports: [{ proto: 'udp', hostPort: 5353, containerPort: 53 }] });
    assert.match(t, /^table ip nsbox-web\ndelete table ip nsbox-web\n/);
    assert.equal(t.match(/fib daddr type local udp dport 5353 dnat to 10\.1\.2\.18:53/g)?.length, 2);
    assert.match(t, /ip saddr 10\.1\.2\.18 oifname != "ve-web" masquerade/);
    assert.match(t, /ip saddr 127\.0\.0\.0\/8 ip daddr 10\.1\.2\.18 masquerade/);
    assert.doesNotMatch(containerTable({ table: 't', hostIf: 'h', address: '10.0.0.2', nat: true, ports: [] }), /prerouting|output/);
  });

  it('puts host0\'s static address into the container plan and, booted, into a networkd drop-in', () => {
    const tree = makeBusyboxTree();
    try {
      const netifs = [{ name: 'host0', address: '10.1.2.18', prefix: 28, gateway: '10.1.2.17' }];
      const facts = { uuid: '00000000-0000-4000-8000-000000000000', resolvConf: { kind: 'missing' as const }, ttyGid: 5, home: '/root', argv: ['/sbin/init'], netifs };
      const boot = buildPlan(normalizeRunOptions({ directory: tree, networkVeth: true, boot: true }, { isTTY: false }), facts);
      assert.deepEqual(boot.netifs, netifs);
      const w = boot.mounts.find((m) => m.kind === 'write' && m.path.startsWith('/run/systemd/network/'));
      assert.deepEqual(w, { kind: 'write', path: '/run/systemd/network/80-container-host0.network.d/50-nsbox.conf', mode: 0o644, content: networkdDropin(netifs[0])!.content });
      assert.match(networkdDropin(netifs[0])!.content, /DHCP=no\nAddress=10\.1\.2\.18\/28\nGateway=10\.1\.2\.17/);
      const wire = encodePlan(boot).toString().split('\0');
      const i = wire.indexOf('netif');
      assert.deepEqual(wire.slice(i, i + 5), ['netif', 'host0', '10.1.2.18', '28', '10.1.2.17']);
      const cmd = buildPlan(normalizeRunOptions({ directory: tree, networkVeth: true, command: ['/bin/true'] }, { isTTY: false }), { ...facts, argv: ['/bin/true'] });
      assert.ok(!cmd.mounts.some((m) => m.kind === 'write' && m.path.startsWith('/run/systemd/network/')), 'no drop-in for a one-shot command');
      const plain = buildPlan(normalizeRunOptions({ directory: tree, command: ['/bin/true'] }, { isTTY: false }), { ...facts, netifs: undefined });
      assert.equal(plain.netifs, undefined);
      assert.ok(!encodePlan(plain).toString().split('\0').includes('netif'));
    } finally { rmSync(tree, { recursive: true, force: true }); }
  });
});
