import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxTree } from '../helpers/tree.js';
import { bootTree, removeTree } from '../helpers/debian-trees.js';
import { nsbox, nsboxAsync, collect, sleep } from '../helpers/cli.js';
import { UID_PICK_MIN, UID_PICK_MAX, LOCK_DIR } from '../../runtime/userns.js';

function machineEntry(name: string): { leader: number } | undefined {
  try { return JSON.parse(readFileSync(`/run/nsbox/machines/${name}.json`, 'utf8')); } catch { return undefined; }
}

/** The host uid range of a -U run: "0 SHIFT COUNT" from its uid_map. */
function shiftOf(out: string): number {
  const m = /^\s*0\s+(\d+)\s+65536\s*$/m.exec(out);
  assert.ok(m, `no uid map in ${out}`);
  return Number(m![1]);
}

async function waitLeader(name: string): Promise<number> {
  for (let i = 0; i < 200; i++) { const e = machineEntry(name); if (e?.leader) return e.leader; await sleep(50); }
  throw new Error(`${name} did not start`);
}

describe('nsbox run -U: user namespaces', function () {
  this.timeout(120_000);
  let tree: string, scratch: string;
  before(() => { tree = makeBusyboxTree(); scratch = mkdtempSync(join(tmpdir(), 'nsbox-userns-')); });
  after(() => { rmSync(tree, { recursive: true, force: true }); rmSync(scratch, { recursive: true, force: true }); });

  it('makes root inside a shifted uid outside, with the tree idmapped instead of chowned', async () => {
    const child = nsboxAsync(['run', '-U', '-D', tree, '-M', 'uns-a', 'sh', '-c', 'cat /proc/self/uid_map; id -u; touch /made-inside; sleep 2']);
    const done = collect(child);
    const leader = await waitLeader('uns-a');
    const hostUid = /\nUid:\s+(\d+)/.exec(readFileSync(`/proc/${leader}/status`, 'utf8'))![1];
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    const shift = shiftOf(r.stdout);
    assert.ok(shift >= UID_PICK_MIN && shift <= UID_PICK_MAX && shift % 65536 === 0, `shift ${shift}`);
    assert.equal(Number(hostUid), shift, 'the host sees the container\'s root as the shifted uid');
    assert.match(r.stdout, /\n0\n/);
    // idmapped: the tree keeps host-native owners, nothing was chowned
    assert.equal(statSync(join(tree, 'made-inside')).uid, 0);
    assert.equal(statSync(tree).uid, 0);
    assert.equal(statSync(join(tree, 'home/user')).uid, 1000);
    assert.ok(!existsSync(join(LOCK_DIR, String(shift))), 'the range\'s lock is gone');
  });

  it('picks the same range for a machine run after run, and distinct ranges for containers that run at once', async () => {
    const one = shiftOf(nsbox(['run', '-U', '-D', tree, '-M', 'uns-same', 'cat', '/proc/self/uid_map']).stdout);
    const two = shiftOf(nsbox(['run', '-U', '-D', tree, '-M', 'uns-same', 'cat', '/proc/self/uid_map']).stdout);
    assert.equal(one, two);
    // the same machine name twice at once: the second must not share the first's range
    const a = collect(nsboxAsync(['run', '-U', '-D', tree, '-M', 'uns-same', 'sh', '-c', 'cat /proc/self/uid_map; sleep 2']));
    await waitLeader('uns-same');
    const b = nsbox(['run', '-U', '-D', tree, 'cat', '/proc/self/uid_map']);
    const ra = await a;
    assert.equal(ra.code, 0, ra.stderr);
    assert.notEqual(shiftOf(ra.stdout), shiftOf(b.stdout));
  });

  it('shows host files in a plain bind mount as nobody\'s, and creates files there as the shifted uid; :idmap shows them unshifted', () => {
    const dir = join(scratch, 'shared');
    mkdirSync(dir, { recursive: true, mode: 0o777 });
    writeFileSync(join(dir, 'host-file'), 'host\n', { mode: 0o644 });
    execFileSync('chmod', ['0777', dir]);
    const r = nsbox(['run', '-U', '-D', tree, '-M', 'uns-bind', '--bind', `${dir}:/plain`, '--bind', `${dir}:/mapped:idmap`, 'sh', '-c',
      'cat /proc/self/uid_map; stat -c %u /plain/host-file /mapped/host-file; touch /plain/made; echo x >> /plain/host-file 2>/dev/null || echo denied']);
    assert.equal(r.status, 0, r.stderr);
    const shift = shiftOf(r.stdout);
    assert.match(r.stdout, /\n65534\n0\ndenied\n$/);
    assert.equal(statSync(join(dir, 'made')).uid, shift);
    assert.equal(readFileSync(join(dir, 'host-file'), 'utf8'), 'host\n');
  });

  it('runs -u USER inside a -U container as that user\'s shifted uid', () => {
    const r = nsbox(['run', '-U', '-D', tree, '-u', 'user', 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^1000\n/);
  });

  it('chowns the tree with --private-users-ownership=chown, records the shift in its root, and undoes it with --private-users=0', () => {
    const t = makeBusyboxTree({ name: 'nsbox-chown-' });
    try {
      const r = nsbox(['run', '-U', '--private-users-ownership=chown', '-D', t, '-M', 'uns-chown', 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u:%g / /home/user /bin/busybox']);
      assert.equal(r.status, 0, r.stderr);
      const shift = shiftOf(r.stdout);
      assert.match(r.stdout, /\n0:0\n1000:1000\n0:0\n$/);
      assert.equal(statSync(t).uid, shift, 'the shift is recorded as the owner of the tree\'s root');
      assert.equal(statSync(join(t, 'home/user')).uid, shift + 1000);
      // the next run picks the recorded range and has nothing to chown
      const again = nsbox(['run', '-U', '-D', t, '-M', 'uns-chown-other-name', 'cat', '/proc/self/uid_map']);
      assert.equal(shiftOf(again.stdout), shift);
      assert.doesNotMatch(again.stderr, /Shifting/);
      const undo = nsbox(['run', '--private-users=0', '--private-users-ownership=chown', '-D', t, 'true']);
      assert.equal(undo.status, 0, undo.stderr);
      assert.equal(statSync(t).uid, 0);
      assert.equal(statSync(join(t, 'home/user')).uid, 1000);
    } finally { rmSync(t, { recursive: true, force: true }); }
  });

  it('never gives a running container\'s range to a second one, even when both want the range recorded in the tree', async () => {
    const t = makeBusyboxTree({ name: 'nsbox-shared-range-' });
    try {
      const first = nsbox(['run', '-U', '--private-users-ownership=chown', '-D', t, 'true']);
      assert.equal(first.status, 0, first.stderr);
      const recorded = statSync(t).uid;
      const a = collect(nsboxAsync(['run', '-U', '-D', t, '-M', 'uns-range-a', 'sh', '-c', 'cat /proc/self/uid_map; sleep 2']));
      await waitLeader('uns-range-a');
      const b = nsbox(['run', '-U', '--private-users-ownership=off', '-D', t, '-M', 'uns-range-b', 'cat', '/proc/self/uid_map']);
      const ra = await a;
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(shiftOf(ra.stdout), recorded);
      assert.notEqual(shiftOf(b.stdout), recorded);
    } finally { rmSync(t, { recursive: true, force: true }); }
  });

  it('redoes a chown pass that was interrupted (the tree root left with the busy owner)', () => {
    const t = makeBusyboxTree({ name: 'nsbox-busy-' });
    try {
      chownSync(t, 0xfffe0000, 0xfffe0000); // as a pass killed half-way leaves it
      const r = nsbox(['run', '-U', '-D', t, 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u /home/user']);
      assert.equal(r.status, 0, r.stderr);
      const shift = shiftOf(r.stdout);
      assert.match(r.stdout, /\n1000\n$/);
      assert.equal(statSync(t).uid, shift);
    } finally { rmSync(t, { recursive: true, force: true }); }
  });

  describe('on a file system that cannot idmap (a tree on overlayfs)', () => {
    let lower: string, ovl: string;
    before(() => {
      lower = makeBusyboxTree({ name: 'nsbox-ovl-lower-' });
      ovl = mkdtempSync(join(tmpdir(), 'nsbox-ovl-'));
      for (const d of ['u', 'w', 'm']) mkdirSync(join(ovl, d));
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${ovl}/u,workdir=${ovl}/w`, `${ovl}/m`]);
    });
    after(() => {
      try { execFileSync('umount', [`${ovl}/m`]); } catch { /* not mounted */ }
      rmSync(ovl, { recursive: true, force: true }); rmSync(lower, { recursive: true, force: true });
    });

    it('refuses --private-users-ownership=map in one line, exit 125, with nothing changed or left locked', () => {
      const locks = existsSync(LOCK_DIR) ? readdirSync(LOCK_DIR) : [];
      const r = nsbox(['run', '-U', '--private-users-ownership=map', '-D', `${ovl}/m`, 'true']);
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, /cannot run with --private-users-ownership=map: `.*` cannot be idmapped \(its file system does not support idmapped mounts\)/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(statSync(`${ovl}/m`).uid, 0);
      assert.deepEqual(existsSync(LOCK_DIR) ? readdirSync(LOCK_DIR) : [], locks);
    });

    it('refuses -x there (a chown would change the tree)', () => {
      const r = nsbox(['run', '-U', '-x', '-D', `${ovl}/m`, 'true']);
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, /an ephemeral run must not change the tree/);
      assert.equal(statSync(`${ovl}/m`).uid, 0);
    });

    it('falls back to a chown pass with -U (auto), saying so', () => {
      const r = nsbox(['run', '-U', '-D', `${ovl}/m`, 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u /home/user']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /cannot be idmapped .*: shifting its owners to \d+ instead \(chown\)/);
      assert.match(r.stdout, /\n1000\n$/);
      assert.equal(statSync(`${ovl}/m`).uid, shiftOf(r.stdout));
    });
  });

  it('runs -x with -U on an idmapped tree, leaving the tree unchanged', () => {
    const r = nsbox(['run', '-x', '-U', '-D', tree, 'sh', '-c', 'echo e > /eph; stat -c %u /eph /home/user']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '0\n1000\n');
    assert.ok(!existsSync(join(tree, 'eph')));
  });

  it('enters a running -U machine with nsbox exec, in its user namespace', async () => {
    const done = collect(nsboxAsync(['run', '-U', '-D', tree, '-M', 'uns-exec', 'sleep', '30']));
    await waitLeader('uns-exec');
    const r = nsbox(['exec', 'uns-exec', '--', 'sh', '-c', 'id -u; cat /proc/self/uid_map; ls /proc | grep -c "^[0-9]"']);
    nsbox(['stop', 'uns-exec', '--timeout', '2']);
    await done;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^0\n/);
    shiftOf(r.stdout);
  });

  it('removes the range\'s lock file when nsbox is killed with SIGKILL', async () => {
    const child = nsboxAsync(['run', '-U', '-D', tree, '-M', 'uns-kill', 'sleep', '300']);
    const leader = await waitLeader('uns-kill');
    const shift = Number(/\nUid:\s+(\d+)/.exec(readFileSync(`/proc/${leader}/status`, 'utf8'))![1]);
    assert.ok(existsSync(join(LOCK_DIR, String(shift))));
    child.kill('SIGKILL');
    for (let i = 0; i < 50 && existsSync(join(LOCK_DIR, String(shift))); i++) await sleep(100);
    assert.ok(!existsSync(join(LOCK_DIR, String(shift))));
  });

  it('reports a kernel that creates no user namespace in one line, exit 125, before anything changes', function () {
    const t = makeBusyboxTree({ name: 'nsbox-nouserns-' });
    const knob = '/proc/sys/user/max_user_namespaces';
    const was = readFileSync(knob, 'utf8').trim();
    const locks = existsSync(LOCK_DIR) ? readdirSync(LOCK_DIR) : [];
    let r;
    try { writeFileSync(knob, was); } catch { rmSync(t, { recursive: true, force: true }); this.skip(); } // not writable here (a sandboxed host)
    try {
      writeFileSync(knob, '0'); // for the length of one run: what a kernel without user namespaces answers
      r = nsbox(['run', '-U', '--private-users-ownership=chown', '-D', t, 'true']);
    } finally { writeFileSync(knob, was); }
    try {
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, /cannot use -U: the kernel refuses to create a user namespace/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(statSync(t).uid, 0, 'nothing was chowned');
      assert.deepEqual(existsSync(LOCK_DIR) ? readdirSync(LOCK_DIR) : [], locks);
    } finally { rmSync(t, { recursive: true, force: true }); }
  });

  const bad: [string, string[], RegExp][] = [
    ['a bad --private-users value', ['--private-users=lots'], /invalid --private-users `lots`/],
    ['a bad --private-users-ownership value', ['-U', '--private-users-ownership=steal'], /invalid --private-users-ownership `steal`/],
    [':idmap without a user namespace', ['--bind=/tmp:/t:idmap'], /the bind option `idmap` needs a user namespace/],
  ];
  for (const [what, flags, message] of bad) {
    it(`reports ${what} in one line and exits 125`, () => {
      const r = nsbox(['run', ...flags, '-D', tree, 'true']);
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    });
  }
});

describe('nsbox run -U: escapes that root inside must not manage', function () {
  this.timeout(120_000);
  let tree: string, scratch: string;
  before(function () {
    tree = makeBusyboxTree();
    scratch = mkdtempSync(join(tmpdir(), 'nsbox-escape-'));
    const src = join(scratch, 'probe.c');
    writeFileSync(src, `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
static void report(const char *what, long r) { printf("%s %s\\n", what, r < 0 ? strerror(errno) : "SUCCEEDED"); }
int main(int argc, char **argv) {
  report("init_module", syscall(SYS_init_module, "", 0, ""));
  int fd = open("/dev/null", O_RDONLY);
  report("finit_module", syscall(SYS_finit_module, fd, "", 0));
  report("modprobe", open("/proc/sys/kernel/modprobe", O_WRONLY));
  report("mknod", mknod("/tmp/disk", S_IFBLK | 0600, makedev(atoi(argv[1]), atoi(argv[2]))));
  mkdir("/tmp/m", 0755);
  report("mount", mount("/tmp/disk", "/tmp/m", "ext4", MS_RDONLY, NULL));
  report("hostfile", open("/host/owned-by-root", O_WRONLY | O_APPEND));
  report("hostdir", open("/host/new", O_WRONLY | O_CREAT, 0644));
  char hostroot[64];
  snprintf(hostroot, sizeof hostroot, "/proc/%s/root/etc/hostname", argv[3]);
  report("hostpidroot", open(hostroot, O_WRONLY | O_APPEND));
  report("sysrq", open("/proc/sysrq-trigger", O_WRONLY));
  return 0;
}
`);
    try { execFileSync('cc', ['-static', '-O1', '-o', join(tree, 'probe'), src, '-include', 'stdlib.h']); } catch { this.skip(); }
    mkdirSync(join(scratch, 'host'));
    writeFileSync(join(scratch, 'host/owned-by-root'), 'root\n', { mode: 0o644 });
  });
  after(() => { rmSync(tree, { recursive: true, force: true }); rmSync(scratch, { recursive: true, force: true }); });

  it('cannot load modules, mknod and mount a host disk, or write host root\'s files, even with every capability', () => {
    const dev = statSync('/').dev;
    const major = Math.floor(dev / 256) & 0xfff, minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    const r = nsbox(['run', '-U', '--capability=all', '-D', tree, '--bind', `${join(scratch, 'host')}:/host`, '/probe', String(major), String(minor), String(process.pid)]);
    assert.equal(r.status, 0, r.stderr);
    const res = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)]));
    for (const [what, outcome] of Object.entries(res)) assert.notEqual(outcome, 'SUCCEEDED', `${what} succeeded under -U`);
    // ENOSYS where the kernel is built without module support (this project's machines), EPERM elsewhere
    assert.match(res.init_module, /^(Operation not permitted|Function not implemented)$/);
    assert.match(res.finit_module, /^(Operation not permitted|Function not implemented)$/);
    assert.equal(res.mknod, 'Operation not permitted');
    assert.equal(res.hostfile, 'Permission denied');
    assert.equal(readFileSync(join(scratch, 'host/owned-by-root'), 'utf8'), 'root\n');
    assert.ok(!existsSync(join(scratch, 'host/new')));
  });

  it('sees none of the host\'s processes', () => {
    const r = nsbox(['run', '-U', '-D', tree, 'sh', '-c', 'set -- /proc/[0-9]*; echo $#; kill -0 1 && echo own-init; kill -0 ' + process.pid + ' 2>/dev/null || echo no-host-pid']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '1\nown-init\nno-host-pid\n', 'only the shell itself, PID 1');
  });
});

for (const suite of ['bookworm', 'trixie']) {
  describe(`nsbox run -U -b: booting Debian ${suite} in a user namespace`, function () {
    this.timeout(20 * 60_000);
    let tree: string;
    before(async () => { tree = await bootTree(suite); });
    after(() => { if (tree) removeTree(tree); });

    it('reaches running with no failed units, its own delegated cgroup, and powers off with exit 0', async () => {
      const name = `uboot-${suite}`;
      const done = collect(nsboxAsync(['run', '-U', '-b', '-D', tree, '-M', name, '--console=passive']));
      const leader = await waitLeader(name);
      let state = '';
      for (let i = 0; i < 600; i++) {
        state = nsbox(['exec', name, '--', 'systemctl', 'is-system-running']).stdout.trim();
        if (state && !['initializing', 'starting'].includes(state)) break;
        await sleep(200);
      }
      const failed = nsbox(['exec', name, '--', 'systemctl', '--failed', '--no-legend', '--plain']).stdout.trim();
      const inside = nsbox(['exec', name, '--', 'sh', '-c', 'cat /proc/self/uid_map; cat /proc/1/cgroup; ls /sys/fs/cgroup/system.slice >/dev/null && echo delegated']).stdout;
      const hostUid = Number(/\nUid:\s+(\d+)/.exec(readFileSync(`/proc/${leader}/status`, 'utf8'))![1]);
      nsbox(['exec', name, '--', 'systemctl', 'poweroff']);
      const r = await done;
      assert.equal(state, 'running', `failed units: ${failed}`);
      assert.equal(failed, '');
      assert.equal(shiftOf(inside), hostUid);
      assert.match(inside, /^0::\/init\.scope$/m);
      assert.match(inside, /delegated/);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(statSync(tree).uid, 0, 'idmapped: the tree was not chowned');
    });
  });
}
