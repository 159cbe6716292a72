import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxTree } from '../helpers/tree.js';
import { nsbox, nsboxAsync, collect, sleep } from '../helpers/cli.js';
import { Tmux } from '../helpers/tmux.js';
import { cgroup2Mount, ownCgroup } from '../../runtime/cgroup.js';

/** Nothing a container leaves behind on the host: registry entries, cgroups. */
function leftovers(name: string): string[] {
  const out: string[] = [];
  if (existsSync(`/run/nsbox/machines/${name}.json`)) out.push(`/run/nsbox/machines/${name}.json`);
  const mount = cgroup2Mount();
  const dir = mount && join(mount, ownCgroup(), 'nsbox');
  if (dir && existsSync(dir)) for (const d of readdirSync(dir)) if (d.startsWith(`${name}-`)) out.push(join(dir, d));
  return out;
}

describe('nsbox run: one-shot commands in namespaces', function () {
  this.timeout(120_000);
  let tree: string;
  before(() => { tree = makeBusyboxTree(); });
  after(() => { rmSync(tree, { recursive: true, force: true }); });

  it('runs the command as PID 1 and shows only the container\'s processes', () => {
    const r = nsbox(['run', '-D', tree, '/bin/sh', '-c', 'echo pid=$$; ps -o pid,comm | tail -n +2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^pid=1$/m);
    const pids = r.stdout.split('\n').slice(1).filter(Boolean).map((l) => Number(l.trim().split(/\s+/)[0]));
    assert.ok(pids.every((p) => p < 10), r.stdout);
    assert.deepEqual(leftovers(tree.split('/').pop()!), []);
  });

  it('sets the hostname from -M and the container environment', () => {
    const r = nsbox(['run', '-D', tree, '-M', 'testbox', '/bin/sh', '-c', 'hostname; echo $container; echo $container_uuid; echo $HOME']);
    assert.equal(r.status, 0, r.stderr);
    const [host, container, uuid, home] = r.stdout.trim().split('\n');
    assert.equal(host, 'testbox');
    assert.equal(container, 'nsbox');
    assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(home, '/root');
    const again = nsbox(['run', '-D', tree, '-M', 'testbox', '/bin/sh', '-c', 'echo $container_uuid']);
    assert.equal(again.stdout.trim(), uuid, 'container_uuid is stable per machine');
  });

  it('shows only lo, up, with --private-network', () => {
    const r = nsbox(['run', '-D', tree, '--private-network', '/bin/sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/flags']);
    assert.equal(r.status, 0, r.stderr);
    const [ifs, flags] = [r.stdout.trim().split('\n').slice(0, -1), r.stdout.trim().split('\n').pop()!];
    assert.deepEqual(ifs, ['lo']);
    assert.equal(Number(flags) & 1, 1, 'IFF_UP');
    const host = nsbox(['run', '-D', tree, '/bin/sh', '-c', 'ls /sys/class/net | wc -l']);
    assert.ok(Number(host.stdout.trim()) >= 1);
  });

  it('turns sync calls into no-ops with --suppress-sync, for the command and its children', () => {
    // fsync on a pipe fails with EINVAL; suppressed, it succeeds without reaching the kernel
    const script = 'grep Seccomp: /proc/self/status; echo x | sync /dev/stdin && echo synced';
    const plain = nsbox(['run', '-D', tree, '/bin/sh', '-c', script]);
    assert.match(plain.stdout, /Seccomp:\s+0/);
    assert.doesNotMatch(plain.stdout, /synced/);
    for (const flag of ['--suppress-sync', '--suppress-sync=yes']) {
      const r = nsbox(['run', '-D', tree, flag, '/bin/sh', '-c', `${script}; /bin/sh -c 'echo y | sync /dev/stdin && echo child synced'`]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Seccomp:\s+2/);
      assert.match(r.stdout, /^synced$/m);
      assert.match(r.stdout, /^child synced$/m);
    }
    const no = nsbox(['run', '-D', tree, '--suppress-sync=no', '/bin/sh', '-c', script]);
    assert.doesNotMatch(no.stdout, /synced/);
  });

  it('keeps /proc/sys, /sys and (with --read-only) the tree read-only', () => {
    const r = nsbox(['run', '-D', tree, '/bin/sh', '-c', 'echo x > /proc/sys/kernel/hostname && echo procsys-writable; echo 1 > /sys/kernel/uevent_helper 2>/dev/null && echo sys-writable; touch /written && echo tree-writable']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /procsys-writable|sys-writable/);
    assert.match(r.stdout, /tree-writable/);
    const ro = nsbox(['run', '-D', tree, '--read-only', '/bin/sh', '-c', 'touch /written2 && echo tree-writable; touch /tmp/ok && echo tmp-writable']);
    assert.doesNotMatch(ro.stdout, /tree-writable/);
    assert.match(ro.stdout, /tmp-writable/);
    assert.ok(!existsSync(join(tree, 'written2')));
  });

  it('masks sensitive /proc files', () => {
    const r = nsbox(['run', '-D', tree, '/bin/sh', '-c', 'for f in /proc/kallsyms /proc/keys /proc/timer_list; do [ -e $f ] && wc -c < $f; done']);
    assert.equal(r.status, 0, r.stderr);
    for (const n of r.stdout.trim().split('\n').filter(Boolean)) assert.equal(Number(n), 0);
  });

  it('sets CapBnd to the nspawn default set, changed by --capability and --drop-capability', () => {
    const cap = (args: string[]) => {
      const r = nsbox(['run', '-D', tree, ...args, '/bin/sh', '-c', 'grep CapBnd /proc/self/status']);
      assert.equal(r.status, 0, r.stderr);
      return BigInt(`0x${r.stdout.trim().split(/\s+/)[1]}`);
    };
    assert.equal(cap([]), 0xfcecafffn);
    assert.equal(cap(['--capability', 'CAP_SYS_TIME']), 0xfcecafffn | (1n << 25n));
    assert.equal(cap(['--drop-capability', 'sys_admin,CAP_MKNOD']), 0xfcecafffn & ~(1n << 21n) & ~(1n << 27n));
    const time = nsbox(['run', '-D', tree, '/bin/sh', '-c', 'date -s "2001-01-01 00:00" 2>&1 | grep -q "not permitted" && echo time-refused || echo time-set']);
    assert.match(time.stdout, /time-refused/);
  });

  it('matches systemd-nspawn\'s bounding set when nspawn is installed', function () {
    if (!existsSync('/usr/bin/systemd-nspawn')) this.skip();
    const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs tmpfs /run && exec systemd-nspawn --register=no --keep-unit -q -D "$0" /bin/sh -c "grep CapBnd /proc/self/status"', tree], { encoding: 'utf8' });
    if (r.status !== 0) this.skip();
    assert.equal(BigInt(`0x${r.stdout.trim().split(/\s+/)[1]}`), 0xfcecafffn);
  });

  it('lands a double-chroot escape inside the tree, not on the host', function () {
    const src = join(tmpdir(), `nsbox-escape-${process.pid}.c`);
    writeFileSync(src, `#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
int main(void) {
  mkdir("/tmp/jail", 0755);
  if (chroot("/tmp/jail") != 0) { perror("chroot"); return 2; }
  for (int i = 0; i < 256; i++) chdir("..");
  if (chroot(".") != 0) { perror("chroot ."); return 2; }
  struct stat st;
  puts(stat("/nsbox-tree-marker", &st) == 0 ? "inside" : "escaped");
  return 0;
}
`);
    try { execFileSync('cc', ['-static', '-O1', '-o', join(tree, 'escape'), src]); } catch { this.skip(); } finally { rmSync(src, { force: true }); }
    const r = nsbox(['run', '-D', tree, '/escape']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'inside');
  });

  it('refuses to open or mount a host block device created with mknod', () => {
    const dev = statSync('/').dev;
    const major = Math.floor(dev / 256) & 0xfff, minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    const r = nsbox(['run', '-D', tree, '/bin/sh', '-c', `mknod /tmp/disk b ${major} ${minor}; mkdir -p /tmp/m; mount /tmp/disk /tmp/m && echo mounted; head -c 1 /tmp/disk >/dev/null 2>&1 && echo readable; ls /tmp/m | head -1`]);
    assert.doesNotMatch(r.stdout, /mounted|readable/);
  });

  it('propagates exit codes 0, 1, 42 and 127', () => {
    assert.equal(nsbox(['run', '-D', tree, '/bin/true']).status, 0);
    assert.equal(nsbox(['run', '-D', tree, '/bin/false']).status, 1);
    assert.equal(nsbox(['run', '-D', tree, '/bin/sh', '-c', 'exit 42']).status, 42);
    const nf = nsbox(['run', '-D', tree, 'no-such-command']);
    assert.equal(nf.status, 127);
    assert.match(nf.stderr, /cannot find `no-such-command`/);
    assert.equal(nf.stderr.trim().split('\n').length, 1);
  });

  it('maps a signal death to 128+N and forwards SIGTERM to the container', async () => {
    const child = nsboxAsync(['run', '-D', tree, '-M', 'sigtest', '/bin/sleep', '100']);
    const done = collect(child);
    let entry: { leader: number } | undefined;
    for (let i = 0; i < 100 && !entry?.leader; i++) {
      await sleep(50);
      try { entry = JSON.parse(readFileSync('/run/nsbox/machines/sigtest.json', 'utf8')); } catch { /* not yet */ }
    }
    assert.ok(entry?.leader, 'registered with its leader pid');
    process.kill(entry!.leader, 'SIGKILL');
    assert.equal((await done).code, 137);
    assert.deepEqual(leftovers('sigtest'), []);

    const term = nsboxAsync(['run', '-D', tree, '-M', 'sigtest2', '/bin/sleep', '100']);
    const tdone = collect(term);
    await sleep(700);
    term.kill('SIGTERM');
    assert.equal((await tdone).code, 143);
    assert.deepEqual(leftovers('sigtest2'), []);
  });

  it('passes stdin, stdout and stderr straight through in pipe mode', () => {
    const r = nsbox(['run', '-D', tree, '/bin/sh', '-c', 'tr a-z A-Z; echo to-stderr >&2'], { input: 'hello pipes\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'HELLO PIPES\n');
    assert.equal(r.stderr, 'to-stderr\n');
  });

  it('runs as -u USER with that user\'s home and no capabilities', () => {
    const r = nsbox(['run', '-D', tree, '-u', 'user', '/bin/sh', '-c', 'id -u; id -G; pwd; grep CapEff /proc/self/status']);
    assert.equal(r.status, 0, r.stderr);
    const [uid, groups, pwd, eff] = r.stdout.trim().split('\n');
    assert.equal(uid, '1000');
    assert.match(groups, /\b100\b/);
    assert.equal(pwd, '/home/user');
    assert.match(eff, /0000000000000000/);
  });

  it('bind-mounts host paths read-write and read-only, and mounts a tmpfs', () => {
    const host = mkdtempSync(join(tmpdir(), 'nsbox-bind-'));
    writeFileSync(join(host, 'in.txt'), 'from host\n');
    const r = nsbox(['run', '-D', tree, '--bind', `${host}:/data`, '--bind-ro', `${host}:/ro`, '--tmpfs', '/scratch:mode=0700',
      '/bin/sh', '-c', 'cat /data/in.txt; echo out > /data/out.txt; echo x > /ro/x 2>/dev/null || echo ro-refused; stat -c %a /scratch']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'from host\nro-refused\n700\n');
    assert.equal(readFileSync(join(host, 'out.txt'), 'utf8'), 'out\n');
    rmSync(host, { recursive: true });
  });

  it('starts root\'s login shell from /etc/passwd when no command is given', () => {
    const r = nsbox(['run', '-D', tree], { input: 'echo shell=$0\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /shell=(-?\/bin\/sh|-sh|sh)/);
  });

  it('runs 20 containers on one tree at once, isolated from each other, sharing files', async () => {
    mkdirSync(join(tree, 'shared'), { recursive: true });
    const runs = Array.from({ length: 20 }, (_, i) => collect(nsboxAsync(['run', '-D', tree, '-M', `par${i}`, '/bin/sh', '-c',
      `echo ${i} > /shared/${i}; sleep 1; ls /proc | grep -c '^[0-9]'; ls /shared | wc -l`])));
    const results = await Promise.all(runs);
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 0, `container ${i}: ${r.stderr}`);
      const [procs] = r.stdout.trim().split('\n');
      assert.ok(Number(procs) <= 4, `container ${i} sees ${procs} processes`);
    }
    assert.equal(readdirSync(join(tree, 'shared')).length, 20);
    for (let i = 0; i < 20; i++) assert.deepEqual(leftovers(`par${i}`), []);
  });

  it('kills the container when nsbox is killed with SIGKILL, leaving nothing registered', async () => {
    const child = nsboxAsync(['run', '-D', tree, '-M', 'killme', '/bin/sleep', '300']);
    let entry: { leader: number } | undefined;
    for (let i = 0; i < 100 && !entry?.leader; i++) {
      await sleep(50);
      try { entry = JSON.parse(readFileSync('/run/nsbox/machines/killme.json', 'utf8')); } catch { /* not yet */ }
    }
    assert.ok(entry?.leader);
    child.kill('SIGKILL');
    await sleep(500);
    assert.ok(!existsSync(`/proc/${entry!.leader}`) || readFileSync(`/proc/${entry!.leader}/stat`, 'utf8').includes(' Z '), 'container init is gone');
    for (let i = 0; i < 40 && leftovers('killme').length; i++) await sleep(100);
    assert.deepEqual(leftovers('killme'), []);
    const again = nsbox(['run', '-D', tree, '-M', 'killme', '/bin/true']);
    assert.equal(again.status, 0, again.stderr);
  });

  it('runs 20 containers of one tree at once without -M, each under a free name that nsbox list shows', async () => {
    const base = tree.split('/').pop()!;
    const holder = nsboxAsync(['run', '-D', tree, '/bin/sleep', '60']);
    for (let i = 0; i < 100 && !existsSync(`/run/nsbox/machines/${base}.json`); i++) await sleep(50);
    const children = Array.from({ length: 20 }, () => nsboxAsync(['run', '-D', tree, '--', '/bin/sh', '-c', 'hostname; echo ok; sleep 60']));
    const runs = children.map(collect);
    // Once all have started, all names are held at once: each is unique.
    const ours = () => (JSON.parse(nsbox(['list', '--json']).stdout) as { name: string }[]).map((m) => m.name).filter((n) => n === base || n.startsWith(`${base}-`));
    let names = ours();
    for (let i = 0; i < 300 && names.length < 21; i++) { await sleep(100); names = ours(); }
    assert.equal(names.length, 21, `nsbox list showed ${names.join(' ')}`);
    assert.deepEqual([...names].sort(), [base, ...Array.from({ length: 20 }, (_, i) => `${base}-${i + 2}`)].sort());
    const r = nsbox(['run', '-D', tree, '-M', `${base}-5`, '/bin/true']);
    assert.equal(r.status, 125, 'an explicit -M that is taken stays an error');
    assert.match(r.stderr, /is already running/);
    for (const c of children) c.kill('SIGTERM');
    const results = await Promise.all(runs);
    for (const [i, res] of results.entries()) assert.match(res.stdout, new RegExp(`^${base}-\\d+\nok$`, 'm'), `run ${i}: ${res.stderr}`);
    holder.kill('SIGTERM');
    await collect(holder);
    assert.deepEqual(leftovers(base), []);
  });

  it('refuses a second container with a running machine\'s name', async () => {
    const child = nsboxAsync(['run', '-D', tree, '-M', 'dupe', '/bin/sleep', '30']);
    for (let i = 0; i < 100 && !existsSync('/run/nsbox/machines/dupe.json'); i++) await sleep(50);
    const r = nsbox(['run', '-D', tree, '-M', 'dupe', '/bin/true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /machine name `dupe` is already running/);
    child.kill('SIGTERM');
    await collect(child);
  });
});

describe('nsbox run: bad input', function () {
  this.timeout(60_000);
  let tree: string, empty: string;
  before(() => { tree = makeBusyboxTree(); empty = makeBusyboxTree({ shell: false }); rmSync(join(empty, 'bin/busybox')); });
  after(() => { rmSync(tree, { recursive: true, force: true }); rmSync(empty, { recursive: true, force: true }); });

  const cases: [string, () => string[], RegExp][] = [
    ['a missing -D directory', () => ['run', '-D', '/nonexistent/tree', '/bin/true'], /directory `\/nonexistent\/tree` does not exist/],
    ['a -D that is a file', () => ['run', '-D', '/etc/hostname', '/bin/true'], /is not a directory/],
    ['a tree with no usable shell', () => ['run', '-D', empty], /has no usable shell/],
    ['an unknown capability', () => ['run', '-D', tree, '--capability', 'CAP_FLY', '/bin/true'], /unknown capability `CAP_FLY`/],
    ['a malformed --bind', () => ['run', '-D', tree, '--bind', ':/x', '/bin/true'], /malformed --bind/],
    ['a --bind source that does not exist', () => ['run', '-D', tree, '--bind', '/nonexistent/src:/x', '/bin/true'], /cannot bind `\/nonexistent\/src`/],
    ['conflicting options', () => ['run', '-D', tree, '-b', '-u', 'user'], /--user cannot be combined with --boot/],
    ['an unknown flag', () => ['run', '--frobnicate', '-D', tree], /unknown option `--frobnicate`/],
    ['a bad console mode', () => ['run', '-D', tree, '--console', 'fancy', '/bin/true'], /invalid --console `fancy`/],
    ['an interactive console without a terminal', () => ['run', '-D', tree, '--console', 'interactive', '/bin/true'], /needs a terminal/],
    ['an invalid machine name', () => ['run', '-D', tree, '-M', 'bad/name', '/bin/true'], /invalid machine name/],
    ['booting a tree without init', () => ['run', '-D', tree, '-b'], /has no init to boot/],
  ];
  for (const [what, args, message] of cases) {
    it(`reports ${what} in one line and exits 125`, () => {
      const r = nsbox(args());
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }

  it('refuses to run without root', function () {
    if (!existsSync('/usr/bin/setpriv')) this.skip();
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(import.meta.dirname ?? '', '../../dist/cli/nsbox.cjs'), 'run', '-D', tree, '/bin/true'], { encoding: 'utf8' });
    assert.equal(r.status, 125);
    assert.match(r.stderr, /needs root/);
  });
});

/**
 * Runs a shell script under script(1): a real pty around it; resolves with
 * what reached the terminal. script's stdin stays open (and silent) until
 * the end: at EOF it would type a NUL into the terminal.
 */
async function underPty(shellScript: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-pty-'));
  try {
    const child = spawn('script', ['-q', '-e', '-c', shellScript, join(dir, 'log')], { stdio: ['pipe', 'ignore', 'ignore'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await new Promise((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    child.stdin!.end();
    return readFileSync(join(dir, 'log'), 'latin1');
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

describe('nsbox run: the user\'s terminal around the console', function () {
  this.timeout(60_000);
  let tree: string;
  before(() => { tree = makeBusyboxTree(); });
  after(() => { rmSync(tree, { recursive: true, force: true }); });
  const cli = () => `${process.execPath} ${join(import.meta.dirname ?? '', '../../dist/cli/nsbox.cjs')}`;

  it('passes the container\'s output through unchanged: one \\r per line, as systemd-nspawn', async () => {
    // The markers are printed from octal escapes: the log's header repeats the command line.
    const log = await underPty(`printf '\\074\\074'; ${cli()} run -q -D ${tree} -- sh -c 'echo a; echo b'; printf '\\076\\076'`);
    const body = log.slice(log.indexOf('<<') + 2, log.indexOf('>>'));
    assert.equal(body, 'a\r\nb\r\n');
  });

  it('puts the terminal settings back after the console, also when nsbox is killed with SIGKILL', async () => {
    const log = await underPty([
      'a=$(stty -g)',
      `${cli()} run -q -D ${tree} -- /bin/true`,
      'b=$(stty -g)',
      // (a background job's stdin is /dev/null unless redirected)
      `${cli()} run -q -D ${tree} -- /bin/sleep 30 </dev/tty & sleep 2; d=$(stty -g); kill -9 $!; sleep 1`,
      'c=$(stty -g)',
      'printf "\\n\\075[%s] [%s] [%s] [%s]\\n" "$a" "$b" "$c" "$d"',
    ].join('\n'));
    const m = /^=\[(.*?)\] \[(.*?)\] \[(.*?)\] \[(.*?)\]/m.exec(log);
    assert.ok(m, log);
    assert.notEqual(m![4], m![1], 'the terminal is raw while the console is attached');
    assert.equal(m![2], m![1], 'after a normal exit');
    assert.equal(m![3], m![1], 'after SIGKILL (the guard restores them)');
  });
});

describe('nsbox run: the interactive console in a real terminal', function () {
  this.timeout(60_000);
  let tree: string;
  let tmux: Tmux;
  before(() => { tree = makeBusyboxTree(); });
  after(() => { tmux?.kill(); rmSync(tree, { recursive: true, force: true }); });

  it('proxies a pty, forwards the window size, and ends on Ctrl-] pressed three times', async () => {
    tmux = new Tmux('nsbox-console');
    tmux.start(`node ${join(import.meta.dirname ?? '', '../../dist/cli/nsbox.cjs')} run -D ${tree} -M consoletest /bin/sh; echo "nsbox-exit=$?"; sleep 30`, { width: 123, height: 41 });
    await tmux.waitFor('Press Ctrl-] three times');
    tmux.type('echo $((6*7)); stty size; tty\n');
    await tmux.waitFor(/^42$/m);
    await tmux.waitFor('41 123');
    tmux.send('C-]', 'C-]', 'C-]');
    const screen = await tmux.waitFor(/nsbox-exit=\d+/);
    assert.match(screen, /nsbox-exit=137/);
    assert.match(screen, /terminated/);
    assert.deepEqual(leftovers('consoletest'), []);
  });
});
