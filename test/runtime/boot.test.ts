import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, lstatSync, rmSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { bootTree, removeTree } from '../helpers/debian-trees.js';
import { nsbox, nsboxAsync, collect, sleep, NSBOX } from '../helpers/cli.js';
import { Tmux } from '../helpers/tmux.js';
import { cgroup2Mount, ownCgroup } from '../../runtime/cgroup.js';

type Running = { child: ReturnType<typeof nsboxAsync>; done: ReturnType<typeof collect> };

function entry(name: string): { leader: number; cgroup?: string } | undefined {
  try { return JSON.parse(readFileSync(`/run/nsbox/machines/${name}.json`, 'utf8')); } catch { return undefined; }
}

/** Boots TREE in the background (passive console) and waits for `systemctl is-system-running --wait`. */
async function bootAndWait(tree: string, name: string, extra: string[] = []): Promise<Running & { state: string }> {
  const child = nsboxAsync(['run', '-b', '-D', tree, '-M', name, '--console=passive', ...extra]);
  const done = collect(child);
  for (let i = 0; i < 200 && !entry(name)?.leader; i++) await sleep(50);
  const r = await waitRunning(name);
  const state = r.stdout.trim() || `(none: exit ${r.status} ${r.signal ?? ''} ${r.stderr.trim()}; jobs: ${nsbox(['exec', name, '--', 'systemctl', 'list-jobs', '--no-legend']).stdout.trim()})`;
  return { child, done, state };
}

/**
 * Polls `systemctl is-system-running` (the manager's private socket, no D-Bus
 * needed) until the boot has finished one way or the other.
 */
async function waitRunning(name: string, timeoutMs = 120_000): Promise<ReturnType<typeof nsbox>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = nsbox(['exec', name, '--', 'systemctl', 'is-system-running']);
    const state = r.stdout.trim();
    if ((state && !['initializing', 'starting'].includes(state)) || Date.now() > deadline) return r;
    await sleep(200);
  }
}

function cgroupsOf(name: string): string[] {
  const mount = cgroup2Mount();
  const dir = mount && join(mount, ownCgroup(), 'nsbox');
  return dir && existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith(`${name}-`)) : [];
}

for (const suite of ['bookworm', 'trixie']) {
  describe(`nsbox run -b: booting Debian ${suite} with systemd`, function () {
    this.timeout(20 * 60_000);
    let tree: string;
    before(async function () {
      try { tree = await bootTree(suite); } catch (e) { throw new Error(`cannot build a ${suite} tree: ${(e as Error).message}`); }
    });
    after(() => { if (tree) removeTree(tree); });

    it('reaches running with no failed units, and powers off cleanly with exit 0', async () => {
      const name = `boot-${suite}`;
      const b = await bootAndWait(tree, name);
      assert.equal(b.state, 'running', `system state: ${b.state}; failed: ${nsbox(['exec', name, '--', 'systemctl', '--failed', '--no-legend']).stdout}`);
      const failed = nsbox(['exec', name, '--', 'systemctl', '--failed', '--no-legend', '--plain']);
      assert.equal(failed.stdout.trim(), '');
      // the container interface
      const ci = nsbox(['exec', name, '--', 'sh', '-c', 'cat /run/host/container-manager; echo $(systemd-detect-virt); cat /proc/1/environ | tr "\\0" "\\n" | grep ^container=; ls /run/host/os-release']);
      assert.match(ci.stdout, /^nsbox$/m);
      assert.match(ci.stdout, /container=nsbox/);
      assert.match(ci.stdout, /\/run\/host\/os-release/);
      const cg = nsbox(['exec', name, '--', 'sh', '-c', 'cat /proc/1/cgroup; touch /sys/fs/cgroup/probe.txt 2>&1 | head -1; ls /sys/fs/cgroup | head -3']);
      assert.match(cg.stdout, /^0::\/init\.scope$/m, 'the container sees its own cgroup as root');
      nsbox(['exec', name, '--', 'systemctl', 'poweroff']);
      const r = await b.done;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(cgroupsOf(name), []);
      assert.ok(!existsSync(`/run/nsbox/machines/${name}.json`));
    });
  });
}

describe('nsbox run -b: console login, machine control, journal and faults (bookworm)', function () {
  this.timeout(20 * 60_000);
  let tree: string, tree2: string;
  let tmux: Tmux | undefined;
  before(async () => { tree = await bootTree('bookworm', 'secret-pw'); tree2 = await bootTree('bookworm'); });
  after(() => { tmux?.kill(); for (const t of [tree, tree2]) if (t) removeTree(t); });

  it('shows a login prompt in a real terminal; root logs in with the password; poweroff ends nsbox with 0', async () => {
    tmux = new Tmux('nsbox-login');
    tmux.start(`node ${NSBOX} run -b -D ${tree} -M logintest; echo "nsbox-exit=$?"; sleep 60`);
    await tmux.waitFor(/login:\s*$/m, 90_000);
    tmux.type('root\n');
    await tmux.waitFor(/Password:/, 20_000);
    tmux.type('secret-pw\n');
    await tmux.waitFor(/root@[^:]+:~#/, 30_000);
    tmux.type('echo sum=$((40+2)); tty\n');
    await tmux.waitFor(/^sum=42$/m);
    tmux.type('poweroff\n');
    const screen = await tmux.waitFor(/nsbox-exit=\d+/, 60_000);
    assert.match(screen, /nsbox-exit=0/);
    tmux.kill();
    tmux = undefined;
  });

  it('lists, enters, execs and stops two booted machines running at once', async () => {
    const a = await bootAndWait(tree, 'ctl-a');
    const b = await bootAndWait(tree2, 'ctl-b');
    assert.equal(a.state, 'running');
    assert.equal(b.state, 'running');
    const list = JSON.parse(nsbox(['list', '--json']).stdout) as { name: string; booted: boolean; leader: number }[];
    const names = list.map((m) => m.name);
    assert.ok(names.includes('ctl-a') && names.includes('ctl-b'), names.join(','));
    assert.ok(list.filter((m) => m.name.startsWith('ctl-')).every((m) => m.booted && m.leader > 0));
    assert.match(nsbox(['list']).stdout, /^ctl-a\s+\d+\s+yes/m);
    // exec: exit status, isolation from the other machine
    assert.equal(nsbox(['exec', 'ctl-a', '--', 'sh', '-c', 'exit 7']).status, 7);
    const pid1 = nsbox(['exec', 'ctl-b', '--', 'cat', '/proc/1/comm']);
    assert.equal(pid1.stdout.trim(), 'systemd');
    // shell: a login shell, fed from stdin when not on a terminal
    const sh = nsbox(['shell', 'ctl-a'], { input: 'echo in-shell-$((1+1))\nexit\n' });
    assert.match(sh.stdout, /in-shell-2/);
    // stop: clean poweroff of a booted machine
    assert.equal(nsbox(['stop', 'ctl-a']).status, 0);
    assert.equal((await a.done).code, 0);
    assert.ok(!JSON.parse(nsbox(['list', '--json']).stdout).some((m: { name: string }) => m.name === 'ctl-a'));
    assert.equal(nsbox(['stop', 'ctl-b']).status, 0);
    assert.equal((await b.done).code, 0);
  });

  it('reports unknown machine names for stop, shell and exec', () => {
    for (const args of [['stop', 'no-such-machine'], ['shell', 'no-such-machine'], ['exec', 'no-such-machine', '--', 'true']]) {
      const r = nsbox(args);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /no running machine named `no-such-machine`/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });

  it('reboots in place when the container reboots', async () => {
    const b = await bootAndWait(tree, 'reboot-test');
    assert.equal(b.state, 'running');
    const before = entry('reboot-test')!.leader;
    nsbox(['exec', 'reboot-test', '--', 'systemctl', 'reboot']);
    let after = before;
    for (let i = 0; i < 200 && (after === before || !after); i++) { await sleep(100); after = entry('reboot-test')?.leader ?? 0; }
    assert.notEqual(after, before, 'a new init was started');
    const again = await waitRunning('reboot-test');
    assert.equal(again.stdout.trim(), 'running');
    nsbox(['stop', 'reboot-test']);
    assert.equal((await b.done).code, 0);
  });

  it('links the journal with -j so the host reads the container\'s messages', async () => {
    const b = await bootAndWait(tree, 'journal-test', ['--link-journal=try-guest']);
    const id = nsbox(['exec', 'journal-test', '--', 'cat', '/etc/machine-id']).stdout.trim();
    assert.match(id, /^[0-9a-f]{32}$/);
    const marker = `nsbox-journal-${process.pid}-${Date.now()}`;
    nsbox(['exec', 'journal-test', '--', 'logger', '-t', 'nsboxtest', marker]);
    nsbox(['exec', 'journal-test', '--', 'journalctl', '--flush']);
    const link = `/var/log/journal/${id}`;
    assert.ok(lstatSync(link).isSymbolicLink(), `${link} links into the tree`);
    let out = '';
    for (let i = 0; i < 50 && !out.includes(marker); i++) {
      out = spawnSync('journalctl', ['-D', link, '--no-pager', '-t', 'nsboxtest'], { encoding: 'utf8' }).stdout;
      if (!out.includes(marker)) await sleep(200);
    }
    assert.match(out, new RegExp(marker));
    nsbox(['stop', 'journal-test']);
    await b.done;
    unlinkSync(link);
  });

  it('refuses a name that is already running, and a tree without os-release', async () => {
    const b = await bootAndWait(tree, 'taken');
    const r = nsbox(['run', '-b', '-D', tree2, '-M', 'taken', '--console=passive']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /machine name `taken` is already running/);
    nsbox(['stop', 'taken']);
    await b.done;
    const osr = join(tree2, 'etc/os-release');
    const saved = readFileSync(osr);
    rmSync(osr, { force: true });
    const usr = join(tree2, 'usr/lib/os-release');
    const savedUsr = readFileSync(usr);
    rmSync(usr);
    try {
      const nb = nsbox(['run', '-b', '-D', tree2, '--console=passive']);
      assert.equal(nb.status, 125);
      assert.match(nb.stderr, /does not look like an OS tree to boot/);
    } finally {
      writeFileSync(usr, savedUsr);
      execFileSync('ln', ['-sf', '../usr/lib/os-release', osr]);
      void saved;
    }
  });

  it('kills every container process when the supervisor is killed with SIGKILL during boot, leaving nothing behind', async () => {
    const child = nsboxAsync(['run', '-b', '-D', tree, '-M', 'kill9', '--console=passive']);
    for (let i = 0; i < 200 && !entry('kill9')?.leader; i++) await sleep(50);
    await sleep(300); // mid-boot
    const e = entry('kill9')!;
    const procs = readFileSync(join(e.cgroup!, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean).map(Number);
    child.kill('SIGKILL');
    await collect(child);
    for (let i = 0; i < 50 && (cgroupsOf('kill9').length || existsSync('/run/nsbox/machines/kill9.json')); i++) await sleep(100);
    for (const p of [e.leader, ...procs]) {
      const alive = existsSync(`/proc/${p}`) && !/\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8'));
      assert.ok(!alive, `process ${p} survived`);
    }
    assert.deepEqual(cgroupsOf('kill9'), []);
    assert.ok(!existsSync('/run/nsbox/machines/kill9.json'));
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.ok(!mounts.includes(tree + '/proc'), 'no mount left on the host');
    const again = await bootAndWait(tree, 'kill9');
    assert.equal(again.state, 'running');
    nsbox(['stop', 'kill9']);
    assert.equal((await again.done).code, 0);
  });
});
void chmodSync;
