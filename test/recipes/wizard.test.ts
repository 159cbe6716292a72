/**
 * The bootstrap wizard in a real terminal (tmux): prompts in order with
 * their defaults, bad answers re-asked with the reason, Ctrl-C leaving
 * nothing behind, and a full run producing a tree that boots. Without a
 * terminal, nothing is asked and bad input is one line before any download.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NSBOX, nsbox } from '../helpers/cli.js';
import { hostMirror } from '../helpers/debian-trees.js';
import { Tmux } from '../helpers/tmux.js';

const CACHE = '/var/cache/nsbox';

describe('nsbox bootstrap wizard', function () {
  this.timeout(30 * 60_000);
  let work: string;
  const sessions: Tmux[] = [];
  const term = (name: string, args: string) => {
    const t = new Tmux(name);
    sessions.push(t);
    t.start(`${process.execPath} ${NSBOX} bootstrap ${args}; echo nsbox-exit=$?`, { width: 200, height: 60 });
    return t;
  };
  const clearLine = (t: Tmux) => { for (let i = 0; i < 3; i++) t.send('C-u'); };
  /** nsbox's exit status, from the line the wrapping shell prints (tmux's own pane status is racy under load). */
  const exitOf = async (t: Tmux, timeoutMs = 30_000) => Number(/nsbox-exit=(\d+)/.exec(await t.waitFor(/nsbox-exit=\d+/, timeoutMs))![1]);

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'nsbox-wizard-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'wizard', '-f', join(work, 'key')]);
  });
  after(() => {
    for (const t of sessions) t.kill();
    rmSync(work, { recursive: true, force: true });
  });

  it('Ctrl-C at the first prompt exits 130 with "cancelled" and writes nothing', async () => {
    const dir = join(work, 'cancel1');
    const t = term('wiz-cancel', `debian ${dir}`);
    await t.waitFor('Debian release');
    t.send('C-c');
    assert.equal(await exitOf(t), 130);
    assert.match(t.screen(), /nsbox: cancelled/);
    assert.ok(!existsSync(dir), 'the target directory was created');
  });

  it('prompts in order with defaults, re-asks bad answers with the reason, and Ctrl-C later still leaves nothing', async () => {
    const dir = join(work, 'cancel2');
    const t = term('wiz-order', `debian ${dir}`);
    let s = await t.waitFor('Debian release');
    assert.match(s, /❯ trixie \(Debian 13, stable\)/, 'newest stable is the default');
    t.send('Enter');
    s = await t.waitFor('Mirror');
    assert.ok(s.includes(`(${hostMirror().replace(/\/+$/, '')})`), `the host's mirror is offered:\n${s}`);
    t.type('http://127.0.0.1:9/debian');
    t.send('Enter');
    s = await t.waitFor(/cannot fetch http:\/\/127\.0\.0\.1:9\/debian\/dists\/trixie\/InRelease: \S+/);
    clearLine(t);
    t.send('Enter'); // the default mirror, checked for real
    s = await t.waitFor('Variant', 60_000);
    assert.match(s, /❯ boot/);
    t.send('Enter');
    await t.waitFor('Extra packages');
    t.type('bad name!');
    t.send('Enter');
    await t.waitFor('not a package name: name!');
    clearLine(t);
    t.send('Enter');
    s = await t.waitFor('Hostname');
    assert.match(s, /Hostname \(cancel2\)/);
    clearLine(t);
    t.type('bad_host!');
    t.send('Enter');
    await t.waitFor('expected a host name');
    clearLine(t);
    t.type('wiz1');
    t.send('Enter');
    await t.waitFor('Root password (empty');
    t.type('Pw-first-77');
    t.send('Enter');
    await t.waitFor('Root password again');
    t.type('Pw-second-88');
    t.send('Enter');
    s = await t.waitFor('The passwords do not match; type them again.');
    assert.ok(!s.includes('Pw-first-77') && !s.includes('Pw-second-88'), 'a password was shown');
    await t.waitFor(/The passwords do not match; type them again\.\n.*Root password \(empty/);
    t.type('pw');
    t.send('Enter');
    t.type('pw');
    t.send('Enter');
    await t.waitFor('Set up an OpenSSH server');
    t.type('y');
    t.send('Enter');
    s = await t.waitFor('sshd port');
    assert.match(s, /sshd port \(2222\)/);
    t.type('x');
    t.send('Enter');
    await t.waitFor('expected a port number 1-65535');
    t.send('C-c');
    assert.equal(await exitOf(t), 130, t.screen());
    assert.match(t.screen(), /nsbox: cancelled/);
    assert.ok(!existsSync(dir));
  });

  it('answering everything builds the tree and prints the command that boots it', async function () {
    if (!existsSync(join(CACHE, 'by-sha256'))) this.skip();
    const dir = join(work, 'web1');
    const t = term('wiz-full', `debian ${dir} --release bookworm --include less`);
    await t.answer('Mirror');
    await t.answer('Variant', undefined, 60_000);
    await t.answer('Hostname', 'wiz-web');
    await t.answer('Root password (empty', 'wizard-pw');
    await t.answer('Root password again', 'wizard-pw');
    await t.answer('Set up an OpenSSH server', 'y');
    await t.answer('sshd port');
    await t.answer('socket activation');
    await t.waitFor('Authorized keys file');
    clearLine(t);
    t.type(join(work, 'missing.pub'));
    t.send('Enter');
    await t.waitFor('no such file');
    clearLine(t);
    t.type(join(work, 'key.pub'));
    t.send('Enter');
    const s = await t.waitFor('Bootstrap now?');
    assert.match(s, /Hostname\s+wiz-web/);
    assert.match(s, /sshd\s+port 2222, root by key from/);
    assert.ok(!s.includes('wizard-pw'));
    t.send('Enter');
    await t.waitFor(`nsbox run -b -D ${dir}`, 20 * 60_000);
    assert.equal(await exitOf(t, 60_000), 0);
    assert.equal(readFileSync(join(dir, 'etc/hostname'), 'utf8'), 'wiz-web\n');
    assert.match(readFileSync(join(dir, 'etc/ssh/sshd_config.d/10-nsbox.conf'), 'utf8'), /Port 2222/);
    assert.match(readFileSync(join(dir, 'etc/shadow'), 'utf8'), /^root:\$y\$/m);
    assert.ok(existsSync(join(dir, 'usr/bin/less')));

    // The console login takes the password typed into the wizard.
    const boot = new Tmux('wiz-boot');
    sessions.push(boot);
    const machine = `wiz-boot-${process.pid}`;
    boot.start(`${process.execPath} ${NSBOX} run -b -D ${dir} -M ${machine}`);
    try {
      await boot.answer(/login: $/m, 'root', 90_000);
      await boot.answer(/Password: ?$/m, 'wizard-pw');
      await boot.waitFor(/root@wiz-web/, 30_000);
    } finally {
      await new Promise((r) => spawn(process.execPath, [NSBOX, 'stop', machine], { stdio: 'ignore' }).on('close', r));
    }
  });

  describe('without a terminal', () => {
    const one = (args: string[], expected: RegExp) => {
      const dir = join(work, `bad-${Math.random().toString(36).slice(2, 8)}`);
      // An unreachable mirror: any message but the expected one would come from a download attempt.
      const r = nsbox(['bootstrap', 'debian', dir, '--mirror', 'http://127.0.0.1:9/debian', ...args]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, expected);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!existsSync(dir), 'the target directory was created');
    };
    it('asks nothing, and a required value that is missing names its flag', () => {
      one(['--ssh-port', '2200'], /--authorized-keys is missing/);
      one(['--ssh'], /--authorized-keys is missing/);
    });
    it('bad values are one line each, before any download', () => {
      one(['--ssh-port', 'x'], /^nsbox: --ssh-port: expected a port number 1-65535, got "x"$/m);
      one(['--hostname', 'bad_host!'], /--hostname: expected a host name/);
      one(['--timezone', 'Mars/Olympus'], /--timezone: expected an IANA timezone/);
      one(['--locale', 'klingon'], /--locale: expected a locale such as en_US\.UTF-8/);
      one(['--user', 'Bad User'], /--user: expected a user name/);
      one(['--authorized-keys', join(work, 'nope.pub')], /--authorized-keys: expected the path of a readable public key file \(no such file\)/);
      one(['--root-password-file', join(work, 'nope')], /--root-password-file: expected the path of a readable file/);
    });
    it('a recipe file that fails validation names the field', () => {
      const file = join(work, 'bad.recipe.mjs');
      writeFileSync(file, "export default ({ recipes, extend }) => extend(recipes.debian(), { post: [{ kind: 'hostname', hostname: 'ok' }, { kind: 'console-login' }, { kind: 'sshd', port: 'x' }] });\n");
      const dir = join(work, 'bad-recipe');
      const r = nsbox(['bootstrap', file, dir, '--yes']);
      assert.equal(r.status, 2);
      assert.equal(r.stderr.trim(), `nsbox: invalid recipe \`${file}\`: post[2].port: expected a port number 1-65535, got "x"`);
      const missing = nsbox(['bootstrap', join(work, 'none.recipe.mjs'), dir, '--yes']);
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /cannot read recipe file .*: no such file/);
      assert.ok(!existsSync(dir));
    });
  });
});
