import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTree, removeTree } from '../helpers/debian-trees.js';
import { makeBusyboxTree } from '../helpers/tree.js';
import { nsbox, nsboxAsync, collect, sleep, NSBOX } from '../helpers/cli.js';
import { parseListen } from '../../runtime/listen.js';
import { renderUnits } from '../../runtime/unit.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

function leader(name: string): number | undefined {
  try { return JSON.parse(readFileSync(`/run/nsbox/machines/${name}.json`, 'utf8')).leader || undefined; } catch { return undefined; }
}

describe('runtime/listen and runtime/unit: parsing and rendering', () => {
  it('parses [ADDR:]PORT lists like ListenStream= and rejects bad syntax', () => {
    assert.deepEqual(parseListen('127.0.0.1:2222,[::1]:80,8080').map((s) => [s.addr, s.port]), [['127.0.0.1', 2222], ['::1', 80], ['', 8080]]);
    assert.throws(() => parseListen('host:22'), /invalid --listen `host:22`/);
    assert.throws(() => parseListen('70000'), /invalid port/);
    assert.throws(() => parseListen(''), /invalid --listen/);
  });
  it('renders a notify service with KillMode=mixed and Delegate=yes, and a matching socket', () => {
    const u = renderUnits({ name: 'web', execStart: ['/usr/bin/node', '/opt/nsbox.cjs', 'run', '-b', '-D', '/srv/my tree', '50%'], directory: '/srv/web', socket: parseListen('127.0.0.1:2222') });
    assert.match(u.service, /^Type=notify$/m);
    assert.match(u.service, /^KillMode=mixed$/m);
    assert.match(u.service, /^Delegate=yes$/m);
    assert.match(u.service, /"\/srv\/my tree" 50%%/);
    assert.match(u.socket!, /^ListenStream=127\.0\.0\.1:2222$/m);
  });
});

describe('nsbox unit: units for a host systemd', function () {
  this.timeout(60_000);
  it('writes units that pass systemd-analyze verify', function () {
    if (!existsSync('/usr/bin/systemd-analyze')) this.skip();
    const tree = makeBusyboxTree();
    const dir = mkdtempSync(join(tmpdir(), 'nsbox-units-'));
    try {
      const r = nsbox(['unit', 'verifyme', '-D', tree, '--socket', '127.0.0.1:2299', '--install', '--unit-dir', dir, '--bind-ro', '/etc/hosts']);
      assert.equal(r.status, 0, r.stderr);
      const v = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'nsbox-verifyme.service'), join(dir, 'nsbox-verifyme.socket')], { encoding: 'utf8', cwd: dir });
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.stderr.trim(), '');
      const printed = nsbox(['unit', 'verifyme', '-D', tree]);
      assert.match(printed.stdout, /ExecStart=\S+node \S+nsbox\.cjs run -b -M verifyme --console=passive -D \S+/);
    } finally { rmSync(dir, { recursive: true, force: true }); rmSync(tree, { recursive: true, force: true }); }
  });
  it('rejects a missing name, a missing tree and bad socket syntax', () => {
    assert.match(nsbox(['unit']).stderr, /unit needs a NAME/);
    assert.match(nsbox(['unit', 'x']).stderr, /needs the tree: -D DIR/);
    assert.match(nsbox(['unit', 'x', '-D', '/tmp', '--socket', 'nope']).stderr, /invalid --listen `nope`/);
  });
});

describe('socket pass-through: nsbox started with LISTEN_FDS like systemd does', function () {
  this.timeout(60_000);
  let tree: string;
  let server: Server;
  before(() => { tree = makeBusyboxTree(); });
  after(() => { server?.close(); rmSync(tree, { recursive: true, force: true }); });

  it('hands the listening socket to the container as fd 3 with LISTEN_FDS=1 LISTEN_PID=1 and the names', async () => {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const inode = readlinkSync(`/proc/self/fd/${fd}`);
    const child = spawn('sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec "${process.execPath}" "${NSBOX}" run -D "${tree}" -M passthrough /bin/sh -c 'echo $LISTEN_FDS $LISTEN_PID $LISTEN_FDNAMES; readlink /proc/self/fd/3; ls /proc/self/fd | wc -l'`], {
      stdio: ['ignore', 'pipe', 'pipe', fd],
    });
    let out = '', err = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.stderr!.on('data', (d) => { err += d; });
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 0, err);
    const [env, link] = out.trim().split('\n');
    assert.equal(env, '1 1 web');
    assert.equal(link, inode, 'fd 3 inside is the socket the test opened');
  });
});

describe('nsbox activate: boot on the first connection (Debian bookworm, socket-activated sshd)', function () {
  this.timeout(15 * 60_000);
  let tree: string, keyDir: string, port: number;
  let act: ReturnType<typeof nsboxAsync> | undefined;
  before(async () => {
    tree = await bootTree('bookworm', 'nsbox-test', ['openssh-server']);
    port = await freePort();
    keyDir = mkdtempSync(join(tmpdir(), 'nsbox-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'id')]);
    mkdirSync(join(tree, 'root/.ssh'), { recursive: true, mode: 0o700 });
    writeFileSync(join(tree, 'root/.ssh/authorized_keys'), readFileSync(join(keyDir, 'id.pub')));
    chmodSync(join(tree, 'root/.ssh/authorized_keys'), 0o600);
    // ssh.socket listening exactly where nsbox listens, per-connection sshd
    mkdirSync(join(tree, 'etc/systemd/system/ssh.socket.d'), { recursive: true });
    writeFileSync(join(tree, 'etc/systemd/system/ssh.socket.d/listen.conf'), `[Socket]\nListenStream=\nListenStream=127.0.0.1:${port}\n`);
    execFileSync('chroot', [tree, 'sh', '-c', 'systemctl disable ssh.service; systemctl enable ssh.socket; sed -i "s/^#\\?PermitRootLogin.*/PermitRootLogin prohibit-password/" /etc/ssh/sshd_config'], { stdio: 'ignore' });
  });
  after(async () => {
    if (act) { act.kill('SIGTERM'); await collect(act); }
    if (tree) removeTree(tree);
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  const ssh = (cmd: string) => spawnSync('ssh', ['-p', String(port), '-i', join(keyDir, 'id'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=60', 'root@127.0.0.1', cmd], { encoding: 'utf8', timeout: 120_000 });

  it('boots on the first ssh, serves a second from the same container, and powers off when idle', async () => {
    act = nsboxAsync(['activate', '--listen', `127.0.0.1:${port}`, '--idle-stop', '4', '-D', tree, '-M', 'act-test']);
    const logs = collect(act);
    await sleep(1000);
    assert.equal(leader('act-test'), undefined, 'nothing runs before the first connection');
    const first = ssh('grep ^ID= /etc/os-release; cat /proc/1/comm');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /ID=debian/);
    assert.match(first.stdout, /systemd/);
    const pid1 = leader('act-test');
    assert.ok(pid1);
    const second = ssh('echo second');
    assert.equal(second.stdout.trim(), 'second');
    assert.equal(leader('act-test'), pid1, 'the same container served the second connection');
    // idle: powers off, then boots again on the next connection
    for (let i = 0; i < 100 && leader('act-test'); i++) await sleep(200);
    assert.equal(leader('act-test'), undefined, 'powered off after the idle period');
    const third = ssh('echo third');
    assert.equal(third.stdout.trim(), 'third', third.stderr);
    assert.notEqual(leader('act-test'), pid1);
    act.kill('SIGTERM');
    const r = await logs;
    act = undefined;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Listening on 127\.0\.0\.1:\d+/);
  });

  it('refuses a port in use, bad --listen syntax and a tree whose init is not systemd', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const p = (busy.address() as { port: number }).port;
    const inUse = nsbox(['activate', '--listen', `127.0.0.1:${p}`, '-D', tree]);
    busy.close();
    assert.equal(inUse.status, 125);
    assert.match(inUse.stderr, /cannot listen on 127\.0\.0\.1:\d+: address already in use/);
    assert.match(nsbox(['activate', '--listen', 'x:y', '-D', tree]).stderr, /invalid --listen/);
    const bb = makeBusyboxTree();
    try {
      const r = nsbox(['activate', '--listen', '127.0.0.1:1', '-D', bb]);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /socket activation needs systemd/);
    } finally { rmSync(bb, { recursive: true, force: true }); }
  });
});
