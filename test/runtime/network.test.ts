import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { makeBusyboxTree } from '../helpers/tree.js';
import { sleep } from '../helpers/cli.js';
import { TestNetns, kernelHasLinkKind } from '../helpers/netns.js';

/*
 * nsbox runs inside a network namespace each test makes (test/helpers/netns.ts):
 * that namespace plays the host. Addresses are nsbox's own private ones on
 * links inside it, plus loopback; nothing reaches this machine's network.
 */

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(50);
  }
}

const machineEntry = (name: string) => { try { return JSON.parse(readFileSync(`/run/nsbox/machines/${name}.json`, 'utf8')) as { leader: number }; } catch { return undefined; } };
const started = (name: string) => waitFor(() => (machineEntry(name)?.leader ?? 0) > 0);

describe('nsbox run -n: a veth to the host, addressed, with NAT and forwarded ports', function () {
  this.timeout(120_000);
  let tree: string;
  let ns: TestNetns;
  before(() => { tree = makeBusyboxTree(); });
  after(() => { rmSync(tree, { recursive: true, force: true }); });
  beforeEach(() => { ns = new TestNetns(); });
  afterEach(() => { ns.remove(); });

  it('gives host0 an address, a default route via ve-NAME, and reaches the host at once', () => {
    const r = ns.nsbox(['run', '-D', tree, '-M', 'web', '-n', '/bin/sh', '-c',
      'ip -o -4 addr show host0; ip route; gw=$(ip route | sed -n "s/^default via \\([0-9.]*\\).*/\\1/p"); ping -c1 -W2 $gw >/dev/null && echo ping-ok; ls /sys/class/net']);
    assert.equal(r.status, 0, r.stderr);
    const m = /inet (\d+\.\d+\.\d+)\.(\d+)\/28/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.match(r.stdout, new RegExp(`^default via ${m[1].replace(/\./g, '\\.')}\\.\\d+ dev host0`, 'm'));
    assert.match(r.stdout, /^ping-ok$/m);
    assert.deepEqual(r.stdout.trim().split('\n').slice(-2), ['host0', 'lo']);
    assert.deepEqual(ns.leftovers(), []);
  });

  it('carries TCP both ways between host and container over the veth', async () => {
    const c = ns.nsboxAsync(['run', '-D', tree, '-M', 'tcp', '-n', '/bin/sh', '-c',
      'echo from-container | nc -l -p 7000; gw=$(ip route | sed -n "s/^default via \\([0-9.]*\\).*/\\1/p"); sleep 0.3; nc $gw 7001 < /dev/null']);
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    await started('tcp');
    const hostEnd = ns.sh('ip -o -4 addr show ve-tcp').match(/inet ([\d.]+)/)![1];
    const container = hostEnd.replace(/\.(\d+)$/, (_, n) => `.${Number(n) + 1}`);
    const server = ns.bg('echo from-host | busybox nc -l -p 7001');
    let got = '';
    for (let i = 0; i < 50 && !got.includes('from-container'); i++) {
      got = ns.try(`busybox nc -w 2 ${container} 7000 < /dev/null`).stdout;
      if (!got) await sleep(100);
    }
    assert.match(got, /from-container/);
    await new Promise((r) => c.on('close', r));
    server.kill();
    assert.match(out, /from-host/);
    assert.deepEqual(ns.leftovers(), []);
  });

  it('names a long machine\'s host end as systemd-nspawn does', () => {
    // systemd-nspawn 252 here names it ve-a-ratherS_9B (first 11 bytes + a SipHash of the full name)
    const r = ns.nsbox(['run', '-D', tree, '-M', 'a-rather-long-machine', '-n', '/bin/true']);
    assert.equal(r.status, 0, r.stderr);
    const c = ns.nsboxAsync(['run', '-D', tree, '-M', 'a-rather-long-machine', '-n', '/bin/sleep', '3']);
    return started('a-rather-long-machine').then(() => {
      assert.ok(ns.links().includes('ve-a-ratherS_9B'), ns.links().join(' '));
      return new Promise((r) => c.on('close', r));
    });
  });

  it('forwards -p ports from the host\'s own addresses and from 127.0.0.1 (tcp; udp has its rule)', async () => {
    const c = ns.nsboxAsync(['run', '-D', tree, '-M', 'fwd', '-n', '-p', '8080:80', '-p', 'udp:5353:53', '/bin/sh', '-c',
      'for i in 1 2; do echo served-$i | nc -l -p 80; done']);
    await started('fwd');
    // busybox's nc has no UDP mode: the udp forward is checked as the rule the kernel has
    assert.match(ns.sh('nft list table ip nsbox-fwd'), /fib daddr type local udp dport 5353 dnat to [\d.]+:53/);
    const hostEnd = ns.sh('ip -o -4 addr show ve-fwd').match(/inet ([\d.]+)/)![1];
    const fetch = async (addr: string) => {
      for (let i = 0; i < 50; i++) {
        const r = ns.try(`busybox nc -w 2 ${addr} 8080 < /dev/null`).stdout;
        if (r) return r;
        await sleep(100);
      }
      return '';
    };
    assert.match(await fetch('127.0.0.1'), /served-1/);
    assert.match(await fetch(hostEnd), /served-2/);
    await new Promise((r) => c.on('close', r));
    assert.deepEqual(ns.leftovers(), []);
  });

  it('masquerades the container\'s outbound traffic (a peer with no route back still answers)', async () => {
    // "outside": another namespace on a veth of the host namespace, knowing nothing of the container's subnet
    const out = new TestNetns('out');
    try {
      ns.sh(`ip link add up0 type veth peer name up1 netns ${out.name} && ip addr add 198.18.0.1/30 dev up0 && ip link set up0 up`);
      out.sh('ip addr add 198.18.0.2/30 dev up1 && ip link set up1 up');
      const server = out.bg('echo from-outside | busybox nc -l -p 9000');
      await sleep(200);
      const r = ns.nsbox(['run', '-D', tree, '-M', 'natty', '-n', '/bin/sh', '-c', 'nc -w 3 198.18.0.2 9000 < /dev/null']);
      server.kill();
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /from-outside/);
      assert.deepEqual(ns.leftovers(['up0']), []);
    } finally { out.remove(); }
  });

  it('refuses a host port that is in use, with one line and nothing created', async () => {
    const holder = ns.bg('busybox nc -l -p 8081');
    await sleep(200);
    const r = ns.nsbox(['run', '-D', tree, '-M', 'busy', '-n', '-p', '8081:80', '/bin/true']);
    holder.kill();
    assert.equal(r.status, 125);
    assert.equal(r.stderr.trim(), 'nsbox: cannot forward port tcp:8081: it is in use on the host (EADDRINUSE) (pick another host port with -p HOSTPORT:CONTAINERPORT)');
    assert.deepEqual(ns.leftovers(), []);
  });

  it('refuses a host port another container forwards already', async () => {
    const first = ns.nsboxAsync(['run', '-D', tree, '-M', 'first', '-n', '-p', '8082:80', '/bin/sleep', '5']);
    await started('first');
    const r = ns.nsbox(['run', '-D', tree, '-M', 'second', '-n', '-p', '8082', '/bin/true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /^nsbox: cannot forward port tcp:8082: container `first` forwards it already/);
    first.kill('SIGTERM');
    await new Promise((res) => first.on('close', res));
    assert.deepEqual(ns.leftovers(), []);
  });

  it('refuses overlapping -p and -p without a veth before touching the host', () => {
    const r = ns.nsbox(['run', '-D', tree, '-n', '-p', '8080:80', '-p', 'tcp:8080:81', '/bin/true']);
    assert.equal(r.status, 125);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /overlapping -p\/--port `8080:80` and `tcp:8080:81`/);
    const bad = ns.nsbox(['run', '-D', tree, '-p', 'tcp:http', '/bin/true']);
    assert.match(bad.stderr, /invalid -p\/--port `tcp:http`/);
    const noveth = ns.nsbox(['run', '-D', tree, '-p', '8080', '/bin/true']);
    assert.match(noveth.stderr, /-p\/--port needs -n\/--network-veth or --network-zone/);
    assert.deepEqual(ns.leftovers(), []);
  });

  it('removes links, nft tables, forwarding and its state when nsbox is killed with SIGKILL', async () => {
    const c = ns.nsboxAsync(['run', '-D', tree, '-M', 'killed', '-n', '-p', '8083:80', '/bin/sleep', '300']);
    await started('killed');
    assert.ok(ns.links().includes('ve-killed'));
    assert.ok(ns.nftTables().includes('table ip nsbox-killed'));
    assert.equal(ns.ipForward(), '1');
    c.kill('SIGKILL');
    await waitFor(() => ns.leftovers().length === 0, 10_000).catch(() => {});
    assert.deepEqual(ns.leftovers(), []);
  });
});

describe('nsbox run --network-bridge, --network-zone, --network-macvlan/-ipvlan, --network-interface', function () {
  this.timeout(120_000);
  let tree: string;
  let ns: TestNetns;
  before(() => { tree = makeBusyboxTree(); });
  after(() => { rmSync(tree, { recursive: true, force: true }); });
  beforeEach(() => { ns = new TestNetns(); });
  afterEach(() => { ns.remove(); });

  it('puts the host end vb-NAME on an existing bridge; an unknown bridge is one clear error', async () => {
    ns.sh('ip link add br7 type bridge && ip link set br7 up');
    const c = ns.nsboxAsync(['run', '-D', tree, '-M', 'onbr', '--network-bridge=br7', '/bin/sh', '-c', 'cat /sys/class/net/host0/operstate; sleep 2']);
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    await started('onbr');
    assert.match(ns.sh('ip -o link show vb-onbr'), /master br7/);
    await new Promise((r) => c.on('close', r));
    assert.match(out, /^up$/m);
    const r = ns.nsbox(['run', '-D', tree, '--network-bridge=nosuchbr', '/bin/true']);
    assert.equal(r.status, 125);
    assert.equal(r.stderr.trim(), 'nsbox: cannot join bridge `nosuchbr`: no such interface on the host (create it first (ip link add nosuchbr type bridge) or use --network-zone)');
    assert.deepEqual(ns.leftovers(['br7']), []);
  });

  it('makes vz-ZONE with the first container, shares it, and removes it with the last (kill -9 included)', async () => {
    const a = ns.nsboxAsync(['run', '-D', tree, '-M', 'za', '--network-zone=lab', '/bin/sleep', '300']);
    await started('za');
    const b = ns.nsboxAsync(['run', '-D', tree, '-M', 'zb', '--network-zone=lab', '/bin/sh', '-c', 'ip -o -4 addr show host0; sleep 300']);
    let bout = '';
    b.stdout.on('data', (d) => { bout += d; });
    await started('zb');
    assert.match(ns.sh('ip -o -4 addr show vz-lab'), /inet [\d.]+\.1\/24/);
    assert.match(ns.sh('ip -o link show vb-za'), /master vz-lab/);
    await waitFor(() => /inet/.test(bout));
    const bAddr = /inet ([\d.]+)\/24/.exec(bout)![1];
    // a reaches b across the zone bridge
    assert.match(ns.nsbox(['exec', 'za', '--', 'ping', '-c1', '-W2', bAddr]).stdout, /1 packets received/);
    a.kill('SIGTERM');
    await new Promise((r) => a.on('close', r));
    assert.ok(ns.links().includes('vz-lab'), 'the zone stays while zb runs');
    b.kill('SIGKILL');
    await waitFor(() => ns.leftovers().length === 0).catch(() => {});
    assert.deepEqual(ns.leftovers(), []);
  });

  it('creates a macvlan mv-IF on a host interface and leaves nothing behind', () => {
    ns.sh('ip link add nic0 type veth peer name nic0p && ip link set nic0 up');
    const r = ns.nsbox(['run', '-D', tree, '--network-macvlan=nic0', '/bin/sh', '-c', 'ls /sys/class/net; cat /sys/class/net/mv-nic0/flags']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').slice(0, 2), ['lo', 'mv-nic0']);
    assert.equal(Number(r.stdout.trim().split('\n')[2]) & 1, 1, 'IFF_UP');
    assert.deepEqual(ns.leftovers(['nic0', 'nic0p']), []);
  });

  it('creates an ipvlan iv-IF, or says in one line that the kernel has none', () => {
    ns.sh('ip link add nic0 type veth peer name nic0p && ip link set nic0 up');
    const r = ns.nsbox(['run', '-D', tree, '--network-ipvlan=nic0', '/bin/sh', '-c', 'ls /sys/class/net']);
    if (kernelHasLinkKind('ipvlan')) {
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^iv-nic0$/m);
    } else {
      assert.equal(r.status, 125);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.match(r.stderr, /^nsbox: cannot create ipvlan `iv-nic0` on `nic0`: this kernel has no ipvlan support/);
    }
    assert.deepEqual(ns.leftovers(['nic0', 'nic0p']), []);
  });

  it('moves a host interface in and back out when the container ends, and when nsbox is killed', async () => {
    ns.sh('ip link add nic1 type veth peer name nic1p');
    const r = ns.nsbox(['run', '-D', tree, '--network-interface=nic1', '/bin/sh', '-c', 'ls /sys/class/net']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^nic1$/m);
    assert.ok(ns.links().includes('nic1'), 'back on the host');
    const c = ns.nsboxAsync(['run', '-D', tree, '-M', 'mover', '--network-interface=nic1', '/bin/sleep', '300']);
    await started('mover');
    assert.ok(!ns.links().includes('nic1'), 'inside the container');
    c.kill('SIGKILL');
    await waitFor(() => ns.links().includes('nic1')).catch(() => {});
    assert.ok(ns.links().includes('nic1'), 'back on the host after kill -9');
    const gone = ns.nsbox(['run', '-D', tree, '--network-interface=nosuch0', '/bin/true']);
    assert.equal(gone.status, 125);
    assert.match(gone.stderr, /^nsbox: cannot use `nosuch0` \(--network-interface\): no such interface on the host/);
    await waitFor(() => ns.leftovers(['nic1', 'nic1p']).length === 0).catch(() => {});
    assert.deepEqual(ns.leftovers(['nic1', 'nic1p']), []);
  });
});

describe('nsbox run -b -n: a booted Debian whose systemd-networkd keeps host0 configured', function () {
  this.timeout(20 * 60_000);
  let tree: string;
  let ns: TestNetns;
  before(async () => {
    const { bootTree } = await import('../helpers/debian-trees.js');
    tree = await bootTree('bookworm');
    execFileSync('systemctl', [`--root=${tree}`, 'enable', 'systemd-networkd.service'], { stdio: 'ignore' });
    ns = new TestNetns('boot');
  });
  after(async () => {
    ns?.remove();
    if (tree) (await import('../helpers/debian-trees.js')).removeTree(tree);
  });

  it('reaches running with 0 failed units; networkd has host0 configured with nsbox\'s address; ping works both ways', async () => {
    const c = ns.nsboxAsync(['run', '-b', '-D', tree, '-M', 'netboot', '-n', '--console=passive']);
    const done = new Promise((r) => c.on('close', r));
    await started('netboot');
    let state = '';
    for (let i = 0; i < 600 && !['running', 'degraded', 'maintenance', 'stopping'].includes(state); i++) {
      state = ns.nsbox(['exec', 'netboot', '--', 'systemctl', 'is-system-running']).stdout.trim();
      await sleep(200);
    }
    const failed = ns.nsbox(['exec', 'netboot', '--', 'systemctl', '--failed', '--no-legend', '--plain']).stdout.trim();
    assert.equal(state, 'running', `failed units: ${failed}`);
    assert.equal(failed, '');
    let link = '';
    for (let i = 0; i < 100 && !/host0\s+ether\s+(routable|degraded)\s+configured/.test(link); i++) {
      link = ns.nsbox(['exec', 'netboot', '--', 'networkctl', 'list', '--no-legend']).stdout;
      await sleep(100);
    }
    assert.match(link, /host0\s+ether\s+(routable|degraded)\s+configured/);
    const hostEnd = ns.sh('ip -o -4 addr show ve-netboot').match(/inet ([\d.]+)/)![1];
    const status = ns.nsbox(['exec', 'netboot', '--', 'networkctl', 'status', 'host0', '--no-pager']).stdout;
    const addr = /^\s+Address: (\d+\.\d+\.\d+\.\d+)/m.exec(status)?.[1];
    assert.ok(addr, status);
    assert.match(status, new RegExp(`Gateway: ${hostEnd.replace(/\./g, '\\.')}`));
    const ping = ns.try(`ping -c1 -W2 ${addr}`);
    assert.equal(ping.status, 0, `host -> container: ${ping.stdout} ${ping.stderr} ${status}`);
    // container -> host over TCP (the tree has bash but no ping)
    const server = ns.bg('echo host-answers | busybox nc -l -p 7002');
    await sleep(200);
    const tcp = ns.nsbox(['exec', 'netboot', '--', 'bash', '-c', `exec 3<>/dev/tcp/${hostEnd}/7002; cat <&3`]);
    server.kill();
    assert.match(tcp.stdout, /host-answers/);
    ns.nsbox(['exec', 'netboot', '--', 'systemctl', 'poweroff']);
    await done;
    assert.deepEqual(ns.leftovers(), []);
  });
});
