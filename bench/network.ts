/**
 * bench/network: nsbox and systemd-nspawn side by side, in one run, both
 * inside a network namespace this script makes (it plays the host, so no
 * packet reaches this machine's network):
 *   - boot of a Debian tree to the login prompt with -n;
 *   - TCP throughput host → container with iperf3 (the host's binary,
 *     bind-mounted into the tree for both), over the veth and through -p.
 * systemd-nspawn leaves its veth unaddressed without a host networkd: the
 * script gives its ve-/host0 pair the same kind of /28, host end as gateway,
 * that nsbox gives its own, so both sides move bytes over an identical path.
 * nspawn's -p does not answer 127.0.0.1, so -p is measured to the host
 * end's address for both (nsbox's 127.0.0.1 figure is printed too).
 * Usage: node --import tsx bench/network.ts [BOOT_RUNS] [SECONDS]
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { closeSync, existsSync, realpathSync } from 'node:fs';
import tty from 'node:tty';
import { native } from '../runtime/native.js';
import { bootTree, removeTree } from '../test/helpers/debian-trees.js';
import { NSBOX } from '../test/helpers/cli.js';
import { TestNetns } from '../test/helpers/netns.js';
import { nspawnArgv, removeNspawnCgroups } from './nspawn.js';

const runs = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 3);
const tree = await bootTree('bookworm');
const ns = new TestNetns('bench');
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inNs = (cmd: string, args: string[]) => ['nsenter', [`--net=${ns.path}`, cmd, ...args]] as const;
const nspawnAvailable = existsSync('/usr/bin/systemd-nspawn');

async function bootOnce(argv: string[]): Promise<number> {
  const pty = native().openpty();
  const master = new tty.ReadStream(pty.fd);
  native().setWinsize(pty.fd, 40, 120);
  let screen = '';
  master.on('data', (d: Buffer) => { screen += d.toString(); });
  master.on('error', () => {});
  const t0 = performance.now();
  const [cmd, args] = inNs(argv[0], argv.slice(1));
  const child = spawn(cmd, args, { stdio: [pty.slaveFd, pty.slaveFd, pty.slaveFd], detached: true });
  closeSync(pty.slaveFd);
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  while (!/login:\s*$/m.test(screen)) {
    if (performance.now() - t0 > 120_000) throw new Error(`no login prompt from ${argv.join(' ')}:\n${screen.slice(-2000)}`);
    await sleep(5);
  }
  const ms = performance.now() - t0;
  process.kill(child.pid!, 'SIGTERM');
  await exited;
  master.destroy();
  return ms;
}

// iperf3 and the two libraries the bookworm tree lacks, read-only from the host.
const iperfBinds = ['/usr/bin/iperf3', '/usr/lib/x86_64-linux-gnu/libiperf.so.0', '/usr/lib/x86_64-linux-gnu/libsctp.so.1']
  .filter((p) => existsSync(p)).map((p) => `${realpathSync(p)}:${p}`);

/** iperf3 client in the bench namespace → Gbit/s. */
function iperf(addr: string, port: number): number {
  const r = spawnSync('nsenter', [`--net=${ns.path}`, 'iperf3', '-c', addr, '-p', String(port), '-t', String(seconds), '-J'], { encoding: 'utf8', timeout: (seconds + 20) * 1000 });
  if (r.status !== 0) throw new Error(`iperf3 to ${addr}:${port} failed: ${r.stdout.slice(-500)} ${r.stderr}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
}

async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(50); }
}
const hostAddr = (link: string) => /inet ([\d.]+)/.exec(ns.try(`ip -o -4 addr show ${link}`).stdout)?.[1];
const plusOne = (a: string) => a.replace(/\.(\d+)$/, (_, n) => `.${Number(n) + 1}`);
const reachable = (addr: string, port: number) => ns.try(`busybox nc -w 1 ${addr} ${port} < /dev/null`, 5000).status === 0;

interface Throughput { veth: number; port: number; loopback?: number }

async function nsboxThroughput(): Promise<Throughput> {
  const binds = iperfBinds.flatMap((b) => ['--bind-ro', b]);
  const [cmd, args] = inNs(process.execPath, [NSBOX, 'run', '-q', '-D', tree, '-M', 'bench-net', '-n', '-p', '15201:5201', ...binds, '/usr/bin/iperf3', '-s']);
  const c = spawn(cmd, args, { stdio: 'ignore' });
  try {
    await waitFor('ve-bench-net', () => !!hostAddr('ve-bench-net'));
    const host = hostAddr('ve-bench-net')!;
    await waitFor('iperf3 in nsbox', () => reachable(plusOne(host), 5201));
    return { veth: iperf(plusOne(host), 5201), port: iperf(host, 15201), loopback: iperf('127.0.0.1', 15201) };
  } finally { c.kill('SIGTERM'); await new Promise((r) => c.on('close', r)); }
}

async function nspawnThroughput(): Promise<Throughput> {
  const argv = nspawnArgv(['-n', '-p', '15202:5201', ...iperfBinds.map((b) => `--bind-ro=${b}`), '-D', tree, '-M', 'bench-nsp', '/usr/bin/iperf3', '-s']);
  const [cmd, args] = inNs(argv[0], argv.slice(1));
  const c = spawn(cmd, args, { stdio: 'ignore', detached: true });
  try {
    await waitFor('ve-bench-nsp', () => ns.links().includes('ve-bench-nsp'));
    // the same addressing nsbox does itself: a /28, host end .1, host0 .2 with a default route
    const leader = Number(execFileSync('sh', ['-c', `for p in $(pgrep -f "iperf3 -s"); do [ "$(readlink /proc/$p/ns/net)" != "$(readlink /proc/self/ns/net)" ] && [ "$(readlink /proc/$p/ns/net)" != "$(nsenter --net=${ns.path} readlink /proc/self/ns/net)" ] && echo $p; done | head -1`], { encoding: 'utf8' }).trim());
    ns.sh('ip addr add 10.250.0.1/28 dev ve-bench-nsp && ip link set ve-bench-nsp up');
    execFileSync('nsenter', ['-t', String(leader), '-n', 'sh', '-c', 'ip addr add 10.250.0.2/28 dev host0 && ip link set host0 up && ip route add default via 10.250.0.1']);
    await waitFor('iperf3 in nspawn', () => reachable('10.250.0.2', 5201));
    let port = NaN;
    try { await waitFor('nspawn -p', () => reachable('10.250.0.1', 15202), 5000); port = iperf('10.250.0.1', 15202); } catch { /* nspawn set up no forwarding here */ }
    return { veth: iperf('10.250.0.2', 5201), port };
  } finally { try { process.kill(-c.pid!, 'SIGTERM'); } catch { /* gone */ } await new Promise((r) => c.on('close', r)); }
}

const boot: Record<string, number[]> = { nsbox: [], 'systemd-nspawn': [] };
for (let i = 0; i < runs; i++) {
  boot.nsbox.push(await bootOnce([process.execPath, NSBOX, 'run', '-b', '-q', '-n', '-D', tree, '-M', 'bench-boot']));
  if (nspawnAvailable) boot['systemd-nspawn'].push(await bootOnce(nspawnArgv(['-n', '-b', '-D', tree, '-M', 'bench-boot'])));
}
const tn = await nsboxThroughput();
const ts = nspawnAvailable ? await nspawnThroughput() : undefined;

console.log(`network benchmark (bookworm tree, inside a private network namespace; ${runs} boots, ${seconds} s iperf3 each)`);
console.log(`  ${''.padEnd(38)} ${'nsbox'.padStart(10)} ${'nspawn'.padStart(10)} ${'ratio'.padStart(7)}`);
const row = (label: string, a: number, b: number | undefined, unit: string, digits: number) =>
  console.log(`  ${label.padEnd(38)} ${a.toFixed(digits).padStart(10)} ${(b === undefined || Number.isNaN(b) ? 'n/a' : b.toFixed(digits)).padStart(10)} ${(b && !Number.isNaN(b) ? `${(a / b).toFixed(2)}x` : '').padStart(7)}  ${unit}`);
row('boot to login prompt with -n', median(boot.nsbox), boot['systemd-nspawn'].length ? median(boot['systemd-nspawn']) : undefined, 'ms (lower is better)', 0);
row('TCP host -> container, veth', tn.veth, ts?.veth, 'Gbit/s (higher is better)', 2);
row('TCP host -> container, -p (host addr)', tn.port, ts?.port, 'Gbit/s', 2);
row('TCP host -> container, -p 127.0.0.1', tn.loopback!, undefined, 'Gbit/s (nspawn: not forwarded)', 2);
ns.remove();
removeTree(tree);
removeNspawnCgroups();
process.exit(0);
