import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPostSteps, PostStepError, loadRecipeFile } from '../../recipes/index.js';
import { hostsFile, enableLocale, prependSettings } from '../../recipes/post.js';
import { resolveInTree } from '../../recipes/tree-fs.js';
import { inTree } from '../../recipes/in-tree.js';
import { AbortedError } from '../../errors.js';
import { recipeTree } from '../helpers/recipe-trees.js';
import { removeTree } from '../helpers/debian-trees.js';

const PASSWORD = 'Corr3ct horse: battery';

describe('recipes/post: pure helpers', () => {
  it('hostsFile sets 127.0.1.1 after localhost and replaces an old entry', () => {
    assert.equal(hostsFile('127.0.0.1\tlocalhost\n::1\tlocalhost\n', 'web1.example.org'), '127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.org web1\n::1\tlocalhost\n');
    assert.equal(hostsFile('127.0.0.1 localhost\n127.0.1.1 old\n', 'db'), '127.0.0.1 localhost\n127.0.1.1\tdb\n');
  });
  it('enableLocale uncomments or appends the locale', () => {
    assert.equal(enableLocale('# de_DE.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\n', 'de_DE.UTF-8'), 'de_DE.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\n');
    assert.equal(enableLocale('', 'sr_RS.UTF-8@latin'), '\nsr_RS.UTF-8@latin UTF-8\n');
  });
  it('prependSettings puts the settings first and comments the old ones out', () => {
    assert.equal(prependSettings('Port 22\nUsePAM yes\n', ['Port 2222']), '# Set by nsbox (sshd post step)\nPort 2222\n\n#Port 22  # nsbox: set above\nUsePAM yes\n');
  });
  it('resolveInTree keeps absolute symlinks inside the tree', () => {
    const root = mkdtempSync(join(tmpdir(), 'nsbox-resolve-'));
    try {
      execFileSync('mkdir', ['-p', join(root, 'etc'), join(root, 'run')]);
      symlinkSync('/run/hn', join(root, 'etc/hostname'));
      symlinkSync('../../../../..', join(root, 'etc/up'));
      assert.equal(resolveInTree(root, '/etc/hostname'), join(root, 'run/hn'));
      assert.equal(resolveInTree(root, '/etc/hostname', { followLast: false }), join(root, 'etc/hostname'));
      assert.equal(resolveInTree(root, '/etc/up/etc/passwd'), join(root, 'etc/passwd'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('recipes/post on a real Debian tree', function () {
  this.timeout(30 * 60_000);
  let tree: string;
  let work: string;
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);

  before(async function () {
    tree = await recipeTree('bookworm');
    work = mkdtempSync(join(tmpdir(), 'nsbox-post-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'post-test', '-f', join(work, 'id')]);
    writeFileSync(join(work, 'root.pw'), `${PASSWORD}\n`);
  });
  after(() => {
    removeTree(tree);
    rmSync(work, { recursive: true, force: true });
  });

  const inside = async (cmd: string) => {
    const r = await inTree(tree, ['/bin/sh', '-c', cmd]);
    assert.equal(r.code, 0, r.output);
    return r.output;
  };

  it('a recipe file extending debian: every post step takes effect', async () => {
    const recipeFile = join(work, 'web.recipe.mjs');
    writeFileSync(recipeFile, `export default ({ recipes, extend }) => extend(recipes.debian({ release: 'bookworm', variant: 'boot' }), { post: [
      { kind: 'hostname', hostname: 'web1.example.org' },
      { kind: 'root-password', passwordFile: ${JSON.stringify(join(work, 'root.pw'))} },
      { kind: 'user', name: 'app', groups: ['users', 'adm'], shell: '/bin/bash', password: 'app-pw', authorizedKeys: ${JSON.stringify(join(work, 'id.pub'))} },
      { kind: 'locale', locale: 'de_DE.UTF-8' },
      { kind: 'timezone', timezone: 'Europe/Berlin' },
      { kind: 'file', path: '/etc/app/app.conf', content: 'listen=8080\\n', mode: 0o640, owner: 'app:adm' },
      { kind: 'services', enable: ['systemd-networkd.service'], mask: ['systemd-timesyncd.service'] },
      { kind: 'command', command: 'echo built > /etc/app/stamp && echo made the stamp' },
      { kind: 'console-login' },
      { kind: 'sshd', port: 2299, authorizedKeys: ${JSON.stringify(join(work, 'id.pub'))} },
    ] });\n`);
    const recipe = await loadRecipeFile(recipeFile);
    assert.equal(recipe.post?.length, 10);
    await runPostSteps(recipe.post!, tree, { distribution: 'debian', log });

    // hostname
    assert.equal(readFileSync(join(tree, 'etc/hostname'), 'utf8'), 'web1.example.org\n');
    assert.match(readFileSync(join(tree, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1\tweb1\.example\.org web1$/m);
    // root password: hashed by the tree's chpasswd (yescrypt on bookworm), clear text nowhere
    const shadow = readFileSync(join(tree, 'etc/shadow'), 'utf8');
    assert.match(shadow, /^root:\$y\$[^:]+:/m);
    assert.ok(!shadow.includes(PASSWORD) && !lines.join('\n').includes(PASSWORD) && !lines.join('\n').includes('app-pw'));
    assert.equal(spawnSync('grep', ['-rlF', PASSWORD, join(tree, 'etc'), join(tree, 'run'), join(tree, 'tmp'), join(tree, 'root'), join(tree, 'var')]).status, 1, 'the clear password is in the tree');
    assert.deepEqual(existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith('nsbox-post-')) : [], []);
    // user
    assert.match(readFileSync(join(tree, 'etc/passwd'), 'utf8'), /^app:x:1000:1000::\/home\/app:\/bin\/bash$/m);
    assert.match(await inside('id app'), /groups=1000\(app\),.*4\(adm\).*100\(users\)|groups=.*100\(users\).*4\(adm\)/);
    assert.match(shadow, /^app:\$y\$/m);
    const keys = join(tree, 'home/app/.ssh/authorized_keys');
    assert.equal(readFileSync(keys, 'utf8'), readFileSync(join(work, 'id.pub'), 'utf8'));
    assert.equal(statSync(keys).mode & 0o777, 0o600);
    assert.equal(statSync(join(tree, 'home/app/.ssh')).mode & 0o777, 0o700);
    assert.equal(statSync(keys).uid, 1000);
    // locale
    assert.equal(readFileSync(join(tree, 'etc/default/locale'), 'utf8'), 'LANG=de_DE.UTF-8\n');
    assert.match(await inside('locale -a'), /^de_DE\.utf8$/m);
    // timezone
    assert.equal(readlinkSync(join(tree, 'etc/localtime')), '../usr/share/zoneinfo/Europe/Berlin');
    assert.equal(readFileSync(join(tree, 'etc/timezone'), 'utf8'), 'Europe/Berlin\n');
    assert.match(await inside('date +%Z'), /^CES?T$/m);
    // file
    const conf = join(tree, 'etc/app/app.conf');
    assert.equal(readFileSync(conf, 'utf8'), 'listen=8080\n');
    assert.equal(statSync(conf).mode & 0o7777, 0o640);
    assert.equal(statSync(conf).uid, 1000);
    assert.equal(statSync(conf).gid, 4);
    // services
    assert.match(await inside('systemctl is-enabled systemd-networkd.service systemd-timesyncd.service || true'), /^enabled\nmasked$/m);
    // command: ran inside, output logged, named by the tree's hostname
    assert.equal(readFileSync(join(tree, 'etc/app/stamp'), 'utf8'), 'built\n');
    assert.ok(lines.includes('  made the stamp'), lines.join('\n'));
    // console login: root has a password, so no note
    assert.ok(lines.some((l) => /console login: ready/.test(l)));
    // sshd
    assert.equal(readFileSync(join(tree, 'etc/ssh/sshd_config.d/10-nsbox.conf'), 'utf8'),
      '# Written by nsbox (sshd post step)\nPort 2299\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n');
    assert.match(await inside('mkdir -p /run/sshd && sshd -T | grep -Ei "^(port|permitrootlogin|passwordauthentication) "'), /port 2299\npermitrootlogin without-password\npasswordauthentication no/);
    assert.ok(existsSync(join(tree, 'etc/ssh/ssh_host_ed25519_key')));
    assert.equal(readFileSync(join(tree, 'root/.ssh/authorized_keys'), 'utf8'), readFileSync(join(work, 'id.pub'), 'utf8'));
    assert.match(await inside('systemctl is-enabled ssh.service ssh.socket || true'), /^enabled\ndisabled$/m);
  });

  it('steps are idempotent: running them again changes nothing that matters', async () => {
    const before = readFileSync(join(tree, 'root/.ssh/authorized_keys'), 'utf8');
    await runPostSteps([{ kind: 'user', name: 'app', groups: ['users'] }, { kind: 'sshd', port: 2299, authorizedKeys: join(work, 'id.pub') }, { kind: 'hostname', hostname: 'web1.example.org' }],
      tree, { distribution: 'debian', log });
    assert.equal(readFileSync(join(tree, 'root/.ssh/authorized_keys'), 'utf8'), before);
    assert.equal(readFileSync(join(tree, 'etc/hosts'), 'utf8').match(/127\.0\.1\.1/g)?.length, 1);
  });

  it('socket-activated sshd: ssh.socket listens on the port, ssh.service is disabled', async () => {
    await runPostSteps([{ kind: 'sshd', port: 2298, socketActivated: true }], tree, { distribution: 'debian', log });
    assert.equal(readFileSync(join(tree, 'etc/systemd/system/ssh.socket.d/10-nsbox.conf'), 'utf8'), '# Written by nsbox (sshd post step)\n[Socket]\nListenStream=\nListenStream=2298\n');
    assert.match(await inside('systemctl is-enabled ssh.service ssh.socket || true'), /^disabled\nenabled$/m);
  });

  it('a failing step names itself and the last line of its output', async () => {
    await assert.rejects(runPostSteps([{ kind: 'hostname', hostname: 'x' }, { kind: 'command', command: 'echo first; echo it broke >&2; exit 3' }], tree, { distribution: 'debian', log }),
      (e: unknown) => e instanceof PostStepError && e.message === 'cannot run `echo first; echo it broke >&2; exit 3` (post[1] command): `/bin/sh` exited with status 3: it broke');
    await assert.rejects(runPostSteps([{ kind: 'user', name: 'bob', groups: ['nosuchgroup'] }], tree, { distribution: 'debian', log }),
      /cannot add user `bob` \(post\[0\] user\): `useradd` exited with status 6: useradd: group 'nosuchgroup' does not exist/);
    await assert.rejects(runPostSteps([{ kind: 'timezone', timezone: 'Antarctica/Nowhere' }], tree, { distribution: 'debian', log }), /cannot set timezone Antarctica\/Nowhere: the tree has no/);
  });

  it('an absolute symlink in the tree never leads a write onto the host', async () => {
    const victim = join(work, 'host-file');
    rmSync(join(tree, 'etc/motd'), { force: true });
    symlinkSync(victim, join(tree, 'etc/motd'));
    await runPostSteps([{ kind: 'file', path: '/etc/motd', content: 'inside\n' }], tree, { distribution: 'debian', log });
    assert.ok(!existsSync(victim));
    assert.equal(readFileSync(join(tree, victim), 'utf8'), 'inside\n');
    assert.ok(lstatSync(join(tree, 'etc/motd')).isSymbolicLink());
  });

  it('an aborted signal stops before the next step', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(runPostSteps([{ kind: 'hostname', hostname: 'never' }], tree, { distribution: 'debian', log, signal: ac.signal }), AbortedError);
    assert.notEqual(readFileSync(join(tree, 'etc/hostname'), 'utf8'), 'never\n');
  });

  it('console-login without a root password says how to get in', async () => {
    const t = await recipeTree('trixie');
    try {
      const notes: string[] = [];
      await runPostSteps([{ kind: 'console-login' }], t, { distribution: 'debian', log: (l) => notes.push(l) });
      assert.match(notes.join('\n'), /root has no password.*root-password step.*nsbox shell/);
    } finally {
      removeTree(t);
    }
  });
});
