/**
 * End to end: the sshd step on a real tree, the tree booted with
 * `nsbox run -b` (sharing the host's network), and ssh from the host.
 * Also the console login with the root password the recipe set.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPostSteps } from '../../recipes/index.js';
import { collect, nsboxAsync, sleep } from '../helpers/cli.js';
import { recipeTree } from '../helpers/recipe-trees.js';
import { removeTree } from '../helpers/debian-trees.js';
import { Tmux } from '../helpers/tmux.js';
import { NSBOX } from '../helpers/cli.js';

/** 2222 (the step's default) when it is free on the host, else another free port: tests run beside other containers. */
async function freePort(preferred: number): Promise<number> {
  const tryPort = (p: number) => new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(p, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  return tryPort(preferred).catch(() => tryPort(0));
}

function ssh(port: number, key: string, user: string, command: string) {
  return spawnSync('ssh', ['-p', String(port), '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, command], { encoding: 'utf8', timeout: 30_000 });
}

async function sshUntil(port: number, key: string, command: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = ssh(port, key, 'root', command);
    if (r.status === 0 || Date.now() > deadline) return r;
    await sleep(500);
  }
}

for (const [suite, socketActivated] of [['bookworm', false], ['trixie', true]] as const) {
  describe(`sshd step end to end on ${suite}${socketActivated ? ' (socket-activated)' : ''}`, function () {
    this.timeout(30 * 60_000);
    let tree: string;
    let work: string;
    let port: number;
    const machine = `sshd-${suite}-${process.pid}`;

    before(async () => {
      tree = await recipeTree(suite);
      work = mkdtempSync(join(tmpdir(), 'nsbox-sshd-'));
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'nsbox-e2e', '-f', join(work, 'key')]);
      writeFileSync(join(work, 'pw'), 'console-pw-123\n');
      port = await freePort(2222);
      await runPostSteps([
        { kind: 'hostname', hostname: `e2e-${suite}` },
        { kind: 'root-password', passwordFile: join(work, 'pw') },
        { kind: 'console-login' },
        { kind: 'sshd', port, authorizedKeys: join(work, 'key.pub'), socketActivated },
      ], tree, { distribution: 'debian', log: () => {} });
    });
    after(async () => {
      // Stop asynchronously: a blocked event loop would stop draining the console pipe and stall the shutdown.
      await collect(nsboxAsync(['stop', machine]));
      removeTree(tree);
      rmSync(work, { recursive: true, force: true });
    });

    it(`boots with nsbox run -b and root logs in with the key: ssh -p PORT root@127.0.0.1 cat /etc/os-release`, async () => {
      const child = nsboxAsync(['run', '-b', '-D', tree, '-M', machine, '--console=passive']);
      let out = '';
      child.stdout!.on('data', (d) => { out += d; });
      child.stderr!.on('data', (d) => { out += d; });
      try {
        const t0 = Date.now();
        const r = await sshUntil(port, join(work, 'key'), 'cat /etc/os-release; hostname');
        if (process.env.NSBOX_TEST_TIMING) console.log(`ssh after ${Date.now() - t0} ms on port ${port}`);
        assert.equal(r.status, 0, `ssh failed: ${r.stderr}\ncontainer:\n${out.slice(-3000)}`);
        assert.match(r.stdout, suite === 'bookworm' ? /VERSION_CODENAME=bookworm/ : /VERSION_CODENAME=trixie/);
        assert.match(r.stdout, new RegExp(`^e2e-${suite}$`, 'm'));
        // key only: a password login is refused
        const pw = spawnSync('ssh', ['-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
          '-o', 'PubkeyAuthentication=no', 'root@127.0.0.1', 'true'], { encoding: 'utf8', timeout: 30_000 });
        assert.notEqual(pw.status, 0);
        assert.match(pw.stderr, /Permission denied \(publickey\)/);
        if (process.env.NSBOX_TEST_TIMING) console.log(`password refused after ${Date.now() - t0} ms`);
        const units = ssh(port, join(work, 'key'), 'root', 'systemctl is-active ssh.socket ssh.service; systemctl is-system-running');
        if (socketActivated) assert.match(units.stdout, /^active\nactive\n/, units.stdout);
        else assert.match(units.stdout, /^inactive\nactive\n/, units.stdout);
        if (process.env.NSBOX_TEST_TIMING) console.log(`units after ${Date.now() - t0} ms`);
      } finally {
        const t1 = Date.now();
        const st = await collect(nsboxAsync(['stop', machine]));
        if (process.env.NSBOX_TEST_TIMING) console.log(`stop took ${Date.now() - t1} ms: ${st.code} ${st.stderr}`);
        const deadline = Date.now() + 30_000;
        while (child.exitCode === null && Date.now() < deadline) await sleep(200);
        if (process.env.NSBOX_TEST_TIMING) console.log(`child gone after ${Date.now() - t1} ms: ${child.exitCode} ${out.slice(-500)}`);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });

    it('the console login accepts the root password the recipe set', async () => {
      const tmux = new Tmux('nsbox-console');
      tmux.start(`${process.execPath} ${NSBOX} run -b -D ${tree} -M ${machine}-c`);
      try {
        const t0 = Date.now();
        await tmux.waitFor(/login: $/m, 90_000);
        if (process.env.NSBOX_TEST_TIMING) console.log(`login prompt after ${Date.now() - t0} ms`);
        tmux.type('root');
        tmux.send('Enter');
        await tmux.waitFor(/Password: ?$/m);
        tmux.type('console-pw-123');
        tmux.send('Enter');
        await tmux.waitFor(/root@e2e-/, 30_000);
        tmux.type('echo "logged-in-as-$(id -un)"');
        tmux.send('Enter');
        await tmux.waitFor('logged-in-as-root');
      } finally {
        const t1 = Date.now();
        await collect(nsboxAsync(['stop', `${machine}-c`]));
        if (process.env.NSBOX_TEST_TIMING) console.log(`console stop took ${Date.now() - t1} ms`);
        await tmux.waitDead(30_000).catch(() => undefined);
        tmux.kill();
      }
    });
  });
}
