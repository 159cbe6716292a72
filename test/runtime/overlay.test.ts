import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeBusyboxTree } from '../helpers/tree.js';
import { bootTree, removeTree } from '../helpers/debian-trees.js';
import { nsbox, nsboxAsync, collect, sleep } from '../helpers/cli.js';

/** Every file under dir, with its content, to compare a tree before and after. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`${p}${e.isFile() && !e.name.startsWith('busybox') ? `=${readFileSync(p, 'utf8')}` : ''}`);
    }
  };
  walk(dir);
  return out.sort();
}

function machineEntry(name: string): { leader: number } | undefined {
  try { return JSON.parse(readFileSync(`/run/nsbox/machines/${name}.json`, 'utf8')); } catch { return undefined; }
}

describe('nsbox run -x, --volatile, --overlay: throw-away layers', function () {
  this.timeout(120_000);
  let tree: string, scratch: string;
  before(() => { tree = makeBusyboxTree(); scratch = mkdtempSync(join(tmpdir(), 'nsbox-overlay-')); });
  after(() => { rmSync(tree, { recursive: true, force: true }); rmSync(scratch, { recursive: true, force: true }); });

  it('runs -x on a tmpfs overlay: writes are seen inside and gone afterwards, the tree unchanged', () => {
    const before = snapshot(tree);
    const r = nsbox(['run', '-x', '-D', tree, 'sh', '-c', 'echo new > /new-file; echo changed > /nsbox-tree-marker; rm /etc/os-release; cat /new-file /nsbox-tree-marker; grep " / / " /proc/self/mountinfo']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^new\nchanged\n/);
    assert.match(r.stdout, / - overlay overlay /);
    assert.deepEqual(snapshot(tree), before);
  });

  it('keeps two ephemeral containers of one tree apart: neither sees the other\'s writes', async () => {
    const script = (me: string, other: string) => `echo ${me} > /mine-${me}; sleep 1; ls /; test -e /mine-${other} && echo SAW-OTHER; cat /mine-${me}`;
    const a = collect(nsboxAsync(['run', '-x', '-D', tree, 'sh', '-c', script('a', 'b')]));
    const b = collect(nsboxAsync(['run', '-x', '-D', tree, 'sh', '-c', script('b', 'a')]));
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    assert.doesNotMatch(ra.stdout + rb.stdout, /SAW-OTHER/);
    assert.match(ra.stdout, /mine-a\n[\s\S]*a\n$/);
    assert.match(rb.stdout, /mine-b\n[\s\S]*b\n$/);
    assert.ok(!existsSync(join(tree, 'mine-a')) && !existsSync(join(tree, 'mine-b')));
  });

  it('--volatile=state keeps the tree read-only with a fresh writable /var', () => {
    writeFileSync(join(tree, 'var/tmp/old'), 'old\n');
    const r = nsbox(['run', '--volatile=state', '-D', tree, 'sh', '-c', 'touch /x 2>&1 | grep -c Read-only; ls /var; echo v > /var/v && cat /var/v']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['1', 'v']);
    assert.ok(!existsSync(join(tree, 'var/v')));
  });

  it('--volatile=yes boots from a tmpfs root with only the tree\'s /usr, read-only', () => {
    // a merged-/usr tree: /bin is a link into /usr
    const usrTree = makeBusyboxTree({ name: 'nsbox-usrtree-' });
    try {
      renameSync(join(usrTree, 'bin'), join(usrTree, 'usr/xbin'));
      rmSync(join(usrTree, 'usr/bin'), { recursive: true });
      renameSync(join(usrTree, 'usr/xbin'), join(usrTree, 'usr/bin'));
      symlinkSync('usr/bin', join(usrTree, 'bin'));
      const r = nsbox(['run', '--volatile', '-D', usrTree, '/usr/bin/sh', '-c', 'ls /; test -e /etc/passwd && echo HAS-ETC; touch /usr/x 2>&1 | grep -c Read-only; touch /x && echo root-writable; grep " / / " /proc/self/mountinfo']);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /HAS-ETC|nsbox-tree-marker/);
      assert.match(r.stdout, /^1\nroot-writable\n/m);
      assert.match(r.stdout, / - tmpfs /);
      assert.ok(!existsSync(join(usrTree, 'x')));
    } finally { rmSync(usrTree, { recursive: true, force: true }); }
  });

  it('--volatile=overlay behaves as -x', () => {
    const r = nsbox(['run', '--volatile=overlay', '-D', tree, 'sh', '-c', 'echo x > /vol && cat /vol']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'x\n');
    assert.ok(!existsSync(join(tree, 'vol')));
  });

  it('--overlay stacks host directories on a mount point, writes go to the upper one and its work directory goes away', () => {
    const [l1, l2, up] = ['l1', 'l2', 'up'].map((d) => { const p = join(scratch, d); mkdirSync(p, { recursive: true }); return p; });
    writeFileSync(join(l1, 'a'), 'a1\n'); writeFileSync(join(l1, 'b'), 'b1\n'); writeFileSync(join(l2, 'b'), 'b2\n');
    const r = nsbox(['run', '-D', tree, `--overlay=${l1}:${l2}:${up}:/data`, 'sh', '-c', 'cat /data/a /data/b; echo w > /data/w']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'a1\nb2\n');
    assert.equal(readFileSync(join(up, 'w'), 'utf8'), 'w\n');
    assert.ok(!existsSync(join(l2, 'w')) && !existsSync(join(l1, 'w')));
    assert.deepEqual(readdirSync(scratch).filter((d) => d.startsWith('.#nsbox-work')), []);
  });

  it('--overlay with "+" paths and an empty upper: a tree directory made writable on a tmpfs, as --overlay=+/var::/var', () => {
    const r = nsbox(['run', '-D', tree, '--read-only', '--overlay=+/etc::/etc', 'sh', '-c', 'echo t > /etc/t && cat /etc/t /etc/os-release | head -2; touch /x 2>&1 | grep -c Read-only']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^t\nNAME="nsbox test tree"\n1\n$/);
    assert.ok(!existsSync(join(tree, 'etc/t')));
  });

  it('--overlay-ro stacks every path read-only', () => {
    const r = nsbox(['run', '-D', tree, `--overlay-ro=${join(scratch, 'l1')}:${join(scratch, 'l2')}:/ro`, 'sh', '-c', 'cat /ro/a /ro/b; touch /ro/x 2>&1 | grep -c Read-only']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'a1\nb2\n1\n');
  });

  it('removes an overlay\'s work directory when nsbox is killed with SIGKILL', async () => {
    const up = join(scratch, 'up-killed');
    const child = nsboxAsync(['run', '-D', tree, '-M', 'ovl-kill', `--overlay=${join(scratch, 'l1')}:${up}:/data`, 'sleep', '300']);
    for (let i = 0; i < 100 && !machineEntry('ovl-kill')?.leader; i++) await sleep(50);
    assert.equal(readdirSync(scratch).filter((d) => d.startsWith('.#nsbox-work-up-killed')).length, 1);
    child.kill('SIGKILL');
    for (let i = 0; i < 50 && readdirSync(scratch).some((d) => d.startsWith('.#nsbox-work-up-killed')); i++) await sleep(100);
    assert.deepEqual(readdirSync(scratch).filter((d) => d.startsWith('.#nsbox-work')), []);
  });

  const bad: [string, () => string[], RegExp][] = [
    ['an --overlay with a missing lower directory', () => ['run', '-D', tree, `--overlay=/nonexistent/lower:${join(scratch, 'up')}:/data`, 'true'], /cannot overlay `\/nonexistent\/lower` \(--overlay .*\): no such directory on the host/],
    ['an --overlay with one path', () => ['run', '-D', tree, '--overlay=/srv', 'true'], /malformed --overlay `\/srv`: it needs at least two paths/],
    ['a bad --volatile mode', () => ['run', '-D', tree, '--volatile=sometimes', 'true'], /invalid --volatile `sometimes`/],
    ['-x with --volatile', () => ['run', '-D', tree, '-x', '--volatile=state', 'true'], /--ephemeral cannot be combined with --volatile=state/],
  ];
  for (const [what, args, message] of bad) {
    it(`reports ${what} in one line, exits 125 and leaves nothing behind`, () => {
      const before = readdirSync(scratch);
      const r = nsbox(args());
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.deepEqual(readdirSync(scratch), before);
    });
  }
});

describe('nsbox run -x -b: an ephemeral booted Debian', function () {
  this.timeout(20 * 60_000);
  let tree: string;
  before(async () => { tree = await bootTree('bookworm'); });
  after(() => { if (tree) removeTree(tree); });

  it('boots to running with no failed units and leaves the tree as it was', async () => {
    const marker = join(tree, 'etc/hostname');
    const was = readFileSync(marker, 'utf8');
    const child = nsboxAsync(['run', '-x', '-b', '-D', tree, '-M', 'eph-boot', '--console=passive']);
    const done = collect(child);
    let state = '';
    for (let i = 0; i < 600; i++) {
      state = nsbox(['exec', 'eph-boot', '--', 'systemctl', 'is-system-running']).stdout.trim();
      if (state && !['initializing', 'starting'].includes(state)) break;
      await sleep(200);
    }
    const failed = nsbox(['exec', 'eph-boot', '--', 'systemctl', '--failed', '--no-legend', '--plain']).stdout.trim();
    nsbox(['exec', 'eph-boot', '--', 'sh', '-c', 'echo changed > /etc/hostname; touch /var/eph-was-here']);
    nsbox(['exec', 'eph-boot', '--', 'systemctl', 'poweroff']);
    const r = await done;
    assert.equal(state, 'running', `failed units: ${failed}`);
    assert.equal(failed, '');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(marker, 'utf8'), was);
    assert.ok(!existsSync(join(tree, 'var/eph-was-here')));
    assert.ok(existsSync(dirname(marker)));
  });
});
