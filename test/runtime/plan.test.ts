import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlan, MASKED_PROC, type PlanFacts } from '../../runtime/plan.js';
import { normalizeRunOptions } from '../../runtime/options.js';
import { parseRunArgs } from '../../runtime/args.js';
import { encodePlan } from '../../runtime/wire.js';
import { DEFAULT_CAPS, parseCapabilities } from '../../runtime/caps.js';
import { containerUuid } from '../../runtime/supervise.js';

const dir = mkdtempSync(join(tmpdir(), 'nsbox-plan-'));
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
