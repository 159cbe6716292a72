import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlan, MASKED_PROC, type PlanFacts } from '../../runtime/plan.js';
import { normalizeRunOptions } from '../../runtime/options.js';
import { parseRunArgs } from '../../runtime/args.js';
import { encodePlan } from '../../runtime/wire.js';
import { DEFAULT_CAPS, parseCapabilities } from '../../runtime/caps.js';
import { containerUuid } from '../../runtime/supervise.js';

const dir = mkdtempSync(join(tmpdir(), 'nsbox-plan-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const facts: PlanFacts = { uuid: '00000000-0000-4000-8000-000000000000', resolvConf: { kind: 'file' }, hostResolvConf: '/etc/resolv.conf', ttyGid: 5, home: '/root', argv: ['/bin/true'], cgroup: '/sys/fs/cgroup/x' };

describe('runtime/args: parsing run options like systemd-nspawn', () => {
  it('stops at the first non-option so the command keeps its own flags', () => {
    const p = parseRunArgs(['-D', '/srv/t', '--bind-ro=/etc/hosts', '-bq', 'ls', '-la']);
    assert.equal(p.directory, '/srv/t');
    assert.deepEqual(p.bindRo, ['/etc/hosts']);
    assert.equal(p.boot, true);
    assert.equal(p.quiet, true);
    assert.deepEqual(p.command, ['ls', '-la']);
  });
  it('accepts attached short values, repeats and --', () => {
    const p = parseRunArgs(['-D/srv/t', '-EA=1', '-E', 'B=2', '--', '-weird']);
    assert.deepEqual(p.setenv, ['A=1', 'B=2']);
    assert.deepEqual(p.command, ['-weird']);
  });
  it('rejects unknown flags and missing values with a usage error', () => {
    assert.throws(() => parseRunArgs(['--nope']), /unknown option `--nope`/);
    assert.throws(() => parseRunArgs(['-D']), /needs a value/);
  });
});

describe('runtime/options: validation names the option and the value', () => {
  it('defaults the machine name to the directory name and the console to pipe off a terminal', () => {
    const o = normalizeRunOptions({ directory: dir }, { isTTY: false });
    assert.equal(o.machine, dir.split('/').pop());
    assert.equal(o.console, 'pipe');
  });
  it('refuses a missing directory, bad binds, bad capabilities and conflicts', () => {
    assert.throws(() => normalizeRunOptions({ directory: '/nonexistent-nsbox' }, { isTTY: false }), /does not exist/);
    assert.throws(() => normalizeRunOptions({ directory: dir, bind: ['relative:/x'] }, { isTTY: false }), /must be absolute/);
    assert.throws(() => normalizeRunOptions({ directory: dir, bind: ['/nonexistent-nsbox'] }, { isTTY: false }), /no such file/);
    assert.throws(() => normalizeRunOptions({ directory: dir, capability: ['cap_bogus'] }, { isTTY: false }), /unknown capability `cap_bogus`/);
    assert.throws(() => normalizeRunOptions({ directory: dir, boot: true, user: 'x' }, { isTTY: false }), /--user cannot be combined with --boot/);
    assert.throws(() => normalizeRunOptions({ directory: dir, console: 'interactive' }, { isTTY: false }), /needs a terminal/);
  });
  it('computes capabilities from the nspawn default set', () => {
    const o = normalizeRunOptions({ directory: dir, capability: ['CAP_SYS_TIME'], dropCapability: ['sys_admin'] }, { isTTY: false });
    assert.equal(o.capabilities, (DEFAULT_CAPS | (1n << 25n)) & ~(1n << 21n));
    assert.equal(DEFAULT_CAPS, 0xfcecafffn);
    assert.equal(parseCapabilities('all', 'x') & (1n << 16n), 1n << 16n);
  });
});

describe('runtime/plan: the container plan as data', () => {
  const opts = normalizeRunOptions({ directory: dir, command: ['/bin/true'], setenv: ['TERM=vt100', 'FOO=bar'] }, { isTTY: false });
  const plan = buildPlan(opts, facts);
  const dests = plan.mounts.map((m) => ('dest' in m ? m.dest : m.path));

  it('mounts /proc before making /proc/sys read-only and masking host files', () => {
    const proc = dests.indexOf('/proc');
    assert.ok(proc >= 0 && proc < dests.indexOf('/proc/sys'));
    for (const p of MASKED_PROC) assert.ok(plan.mounts.some((m) => m.kind === 'mask' && m.path === p), p);
    assert.ok(plan.mounts.some((m) => m.kind === 'readonly' && m.path === '/proc/sys'));
  });
  it('gives a private /dev with the standard nodes, devpts and ptmx', () => {
    for (const n of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) assert.ok(dests.includes(`/dev/${n}`), n);
    assert.ok(plan.mounts.some((m) => m.kind === 'mount' && m.fstype === 'devpts' && m.data.includes('newinstance')));
    assert.ok(plan.mounts.some((m) => m.kind === 'symlink' && m.path === '/dev/ptmx'));
  });
  it('mounts sysfs read-only and cgroup2 writable for the container', () => {
    const sys = plan.mounts.find((m) => m.kind === 'mount' && m.dest === '/sys');
    assert.ok(sys && sys.kind === 'mount' && (sys.flags & 1) === 1);
    assert.ok(plan.mounts.some((m) => m.kind === 'mount' && m.fstype === 'cgroup2'));
  });
  it('sets the container environment and lets -E override it', () => {
    assert.ok(plan.env.includes('container=nsbox'));
    assert.ok(plan.env.includes(`container_uuid=${facts.uuid}`));
    assert.ok(plan.env.includes('TERM=vt100'));
    assert.ok(plan.env.includes('FOO=bar'));
    assert.equal(plan.env.filter((e) => e.startsWith('TERM=')).length, 1);
  });
  it('puts user binds after the standard mounts and brings up lo only with a private network', () => {
    const o2 = normalizeRunOptions({ directory: dir, bindRo: [`${dir}:/data`], privateNetwork: true }, { isTTY: false });
    const p2 = buildPlan(o2, facts);
    const last = p2.mounts[p2.mounts.length - 1];
    assert.deepEqual(last, { kind: 'bind', source: dir, dest: '/data', readonly: true, recursive: true });
    assert.equal(p2.bringUpLoopback, true);
    assert.equal(p2.network, true);
    assert.equal(plan.bringUpLoopback, false);
    // no host resolv.conf inside a private network
    assert.ok(!p2.mounts.some((m) => m.kind === 'bind' && m.dest === '/etc/resolv.conf'));
  });
  it('serializes to NUL-separated records the native helper understands', () => {
    const wire = encodePlan(plan).toString().split('\0');
    assert.equal(wire[0], 'clone');
    assert.ok(wire.includes('cgroupns'));
    assert.equal(wire[wire.indexOf('caps') + 1], plan.capabilities.toString(16));
    assert.equal(wire[wire.length - 2], '/bin/true');
    assert.ok(!wire.includes('nosync'));
  });
  it('asks for sync calls to be suppressed only with --suppress-sync', () => {
    assert.equal(plan.suppressSync, false);
    const p2 = buildPlan(normalizeRunOptions({ directory: dir, suppressSync: true }, { isTTY: false }), facts);
    assert.equal(p2.suppressSync, true);
    assert.ok(encodePlan(p2).toString().split('\0').includes('nosync'));
    assert.equal(parseRunArgs(['--suppress-sync=no', 'true']).suppressSync, false);
    assert.equal(parseRunArgs(['--suppress-sync', 'true']).suppressSync, true);
    assert.throws(() => parseRunArgs(['--suppress-sync=maybe', 'true']), /`--suppress-sync` takes no value, or yes or no \(got `maybe`\)/);
  });
});

describe('runtime/supervise: container_uuid', () => {
  it('is a well-formed, stable v4 UUID per tree and machine name', () => {
    const re = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const u = containerUuid(`/nonexistent/tree-${i}`, `m${i}`);
      assert.match(u, re);
      assert.equal(u, containerUuid(`/nonexistent/tree-${i}`, `m${i}`));
      seen.add(u);
    }
    assert.equal(seen.size, 500);
  });
});

describe('runtime/plan: ephemeral runs, overlays and user namespaces as data', () => {
  const base = (input: Parameters<typeof normalizeRunOptions>[0]) => normalizeRunOptions({ directory: dir, ...input }, { isTTY: false, cwd: dir });

  it('parses -x, -U, bare --volatile and --private-users like systemd-nspawn', () => {
    const p = parseRunArgs(['-xU', '--volatile', '-D', '/t', 'true']);
    assert.equal(p.ephemeral, true);
    assert.equal(p.privateUsers, 'pick');
    assert.equal(p.volatile, 'yes');
    assert.equal(parseRunArgs(['--private-users', '-D', '/t']).privateUsers, 'yes');
    assert.equal(parseRunArgs(['--private-users=1879048192:65536']).privateUsers, '1879048192:65536');
  });

  it('reads --overlay as nspawn: lowest first, "+" inside the tree, an empty upper as tmpfs, two paths as upper and mount point', () => {
    const o = base({ overlay: [`${dir}:+/srv/up:/data`, `+/var::/var`, `${dir}:/data2`], overlayRo: [`${dir}:+/usr:/ro`] }).overlays;
    assert.deepEqual(o[0], { lowers: [{ path: dir, inTree: false }], upper: { path: '/srv/up', inTree: true }, dest: '/data', readonly: false });
    assert.deepEqual(o[1], { lowers: [{ path: '/var', inTree: true }], upper: 'tmpfs', dest: '/var', readonly: false });
    assert.deepEqual(o[2], { lowers: [{ path: dir, inTree: false }], upper: { path: '/data2', inTree: false }, dest: '/data2', readonly: false });
    assert.deepEqual(o[3], { lowers: [{ path: dir, inTree: false }, { path: '/usr', inTree: true }], dest: '/ro', readonly: true });
  });

  it('names the flag and the value in overlay and user namespace errors', () => {
    assert.throws(() => base({ overlay: ['/nonexistent/l:/u:/d'] }), /cannot overlay `\/nonexistent\/l` \(--overlay `\/nonexistent\/l:\/u:\/d`\): no such directory/);
    assert.throws(() => base({ overlay: [`${dir}:/u:rel`] }), /the destination `rel` must be an absolute path/);
    assert.throws(() => base({ privateUsers: 'many' }), /invalid --private-users `many`/);
    assert.throws(() => base({ privateUsers: 'pick', privateUsersOwnership: 'x' }), /invalid --private-users-ownership `x`/);
    assert.deepEqual(base({ privateUsers: 'identity' }).userns, { mode: 'fixed', shift: 0, count: 65536, ownership: 'auto' });
    assert.equal(base({ privateUsers: 'no' }).userns, undefined);
  });

  it('plans -x and --volatile=overlay as a tmpfs overlay root, --volatile=state as a read-only tree with a tmpfs /var', () => {
    assert.equal(buildPlan(base({ ephemeral: true }), facts).rootLayers, 'overlay');
    assert.equal(buildPlan(base({ volatile: 'overlay' }), facts).rootLayers, 'overlay');
    assert.equal(buildPlan(base({ volatile: 'yes' }), facts).rootLayers, 'volatile-yes');
    const st = buildPlan(base({ volatile: 'state' }), facts);
    assert.equal(st.rootReadOnly, true);
    assert.ok(st.mounts.some((m) => m.kind === 'mount' && m.dest === '/var' && m.fstype === 'tmpfs'));
    const enc = encodePlan(buildPlan(base({ ephemeral: true }), facts)).toString().split('\0');
    assert.equal(enc[enc.indexOf('rootfs') + 1], 'overlay');
  });

  it('plans -U with the tree, sysfs and binds handed over by the supervisor, host device nodes instead of mknod, and the cgroup moved in by the parent', () => {
    const opts = base({ privateUsers: 'pick', bind: [`${dir}:/a`, `${dir}:/b:idmap`] });
    const plan = buildPlan(opts, { ...facts, userns: { shift: 0x10000000, count: 65536, idmapTree: true } });
    assert.deepEqual(plan.userns!.mounts, [
      { kind: 'clone', source: dir, idmap: true, recursive: true },
      { kind: 'sysfs' },
      { kind: 'clone', source: dir, idmap: false, readonly: false, recursive: true },
      { kind: 'clone', source: dir, idmap: true, readonly: false, recursive: true },
    ]);
    assert.equal(plan.userns!.treeMount, 0);
    assert.deepEqual(plan.mounts.filter((m) => m.kind === 'attach').map((m) => [m.fd, (m as { dest: string }).dest]), [[1, '/sys'], [2, '/a'], [3, '/b']]);
    assert.ok(!plan.mounts.some((m) => m.kind === 'mknod'));
    assert.ok(plan.mounts.some((m) => m.kind === 'bind' && m.source === '/dev/null' && m.dest === '/dev/null'));
    assert.equal(plan.cgroup, undefined);
    assert.equal(plan.userns!.cgroup, facts.cgroup);
    const enc = encodePlan(plan).toString().split('\0');
    assert.deepEqual(enc.slice(enc.indexOf('userns'), enc.indexOf('userns') + 3), ['userns', String(0x10000000), '65536']);
    // with its own network the child mounts sysfs itself
    const net = buildPlan(base({ privateUsers: 'pick', privateNetwork: true }), { ...facts, userns: { shift: 0x10000000, count: 65536, idmapTree: false } });
    assert.ok(net.mounts.some((m) => m.kind === 'mount' && m.fstype === 'sysfs'));
  });
});

describe('runtime/userns: picking a uid range', () => {
  it('tries the range recorded in the tree first, then ranges hashed from the machine name, all aligned and in nspawn\'s window', async () => {
    const { pickCandidates, UID_PICK_MIN, UID_PICK_MAX } = await import('../../runtime/userns.js');
    const a = pickCandidates('web', { uid: 0, gid: 0 }, 5);
    assert.deepEqual(a, pickCandidates('web', { uid: 0, gid: 0 }, 5));
    assert.notDeepEqual(a, pickCandidates('db', { uid: 0, gid: 0 }, 5));
    for (const b of a) assert.ok(b % 65536 === 0 && b >= UID_PICK_MIN && b <= UID_PICK_MAX);
    assert.equal(pickCandidates('web', { uid: 0x20000000, gid: 0x20000000 }, 5)[0], 0x20000000);
    assert.notEqual(pickCandidates('web', { uid: 0xfffe0000, gid: 0xfffe0000 }, 5)[0], 0xfffe0000);
  });
});

describe('runtime/userns: what the kernel answers decides the ownership', () => {
  // A stand-in for the native helper's answers only: the decision itself is pure logic.
  const fake = (probe: number) => ({ idmapProbe: () => probe, lockHeld: () => false, close: () => {} }) as unknown as import('../../runtime/native.js').Native;
  const opts = (o: Parameters<typeof normalizeRunOptions>[0]) => normalizeRunOptions({ directory: dir, ...o }, { isTTY: false });

  it('maps where the kernel idmaps the tree, chowns (saying so) where it cannot, and refuses where it has no user namespaces', async () => {
    const { prepareUserns } = await import('../../runtime/userns.js');
    const warnings: string[] = [];
    assert.equal(prepareUserns(opts({ privateUsers: '1879048192' }), 'm', 't', fake(0), (l) => warnings.push(l)).ownership, 'map');
    assert.equal(prepareUserns(opts({ privateUsers: '1879048192' }), 'm', 't', fake(-22), (l) => warnings.push(l)).ownership, 'chown');
    assert.match(warnings[0], /cannot be idmapped \(its file system does not support idmapped mounts\): shifting its owners to 1879048192 instead/);
    assert.throws(() => prepareUserns(opts({ privateUsers: '1879048192', privateUsersOwnership: 'map' }), 'm', 't', fake(-22), () => {}), /cannot run with --private-users-ownership=map/);
    assert.throws(() => prepareUserns(opts({ privateUsers: '1879048192', ephemeral: true }), 'm', 't', fake(-22), () => {}), /an ephemeral run must not change the tree/);
    assert.throws(() => prepareUserns(opts({ privateUsers: '1879048192', privateUsersOwnership: 'chown' }), 'm', 't', fake(-(0x10000 + 28)), () => {}),
      /cannot use -U: the kernel refuses to create a user namespace \(errno 28\)/);
  });
});
