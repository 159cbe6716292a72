import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecipeError, validateRecipe, checkTimezone, checkLocale } from '../../recipes/validate.js';
import { extend, recipes, loadRecipeFile, packagesFor } from '../../recipes/index.js';
import { answersFromFlags, checkAnswers, postSteps, requireAnswers, startCommand, hostnameFromDir } from '../../bin/post-flags.js';
import { UsageError } from '../../errors.js';

describe('recipes/validate', () => {
  let dir: string;
  let key: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nsbox-validate-'));
    key = join(dir, 'id.pub');
    writeFileSync(key, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd0q8pV0mX1 test@example\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const bad = (recipe: unknown, message: RegExp) => assert.throws(() => validateRecipe(recipe), (e: unknown) => e instanceof RecipeError && message.test(e.message));

  it('accepts a recipe with every kind of post step', () => {
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'secret\n');
    const r = validateRecipe({
      distribution: 'debian', release: 'bookworm', variant: 'boot', include: ['curl'], components: ['main', 'contrib'],
      post: [
        { kind: 'hostname', hostname: 'web1.example.org' },
        { kind: 'root-password', passwordFile: pw },
        { kind: 'user', name: 'app', groups: ['users'], shell: '/bin/bash', password: 'x', authorizedKeys: key },
        { kind: 'locale', locale: 'de_CH.UTF-8' },
        { kind: 'timezone', timezone: 'Europe/Zurich' },
        { kind: 'file', path: '/etc/motd', content: 'hi\n', mode: 0o600, owner: 'app:users' },
        { kind: 'services', enable: ['ssh.service'], mask: ['systemd-timesyncd'] },
        { kind: 'command', command: ['true'] },
        { kind: 'console-login' },
        { kind: 'sshd', port: 2222, authorizedKeys: key, socketActivated: true },
      ],
    });
    assert.equal(r.post?.length, 10);
  });

  it('names the field and what was expected for a bad port', () => {
    assert.throws(
      () => validateRecipe({ distribution: 'debian', post: [{ kind: 'hostname', hostname: 'a' }, { kind: 'console-login' }, { kind: 'sshd', port: 'x' }] }),
      { message: 'invalid recipe: post[2].port: expected a port number 1-65535, got "x"' },
    );
    bad({ distribution: 'debian', post: [{ kind: 'sshd', port: 70000 }] }, /post\[0\]\.port: expected a port number 1-65535, got 70000/);
  });

  it('rejects bad host names, user names, timezones and locales', () => {
    bad({ distribution: 'debian', post: [{ kind: 'hostname', hostname: 'bad_name!' }] }, /post\[0\]\.hostname: expected a host name/);
    bad({ distribution: 'debian', post: [{ kind: 'hostname', hostname: '-x' }] }, /post\[0\]\.hostname/);
    bad({ distribution: 'debian', post: [{ kind: 'user', name: 'Bad User' }] }, /post\[0\]\.name: expected a user name/);
    bad({ distribution: 'debian', post: [{ kind: 'user', name: 'root' }] }, /post\[0\]\.name: expected a user other than root/);
    bad({ distribution: 'debian', post: [{ kind: 'timezone', timezone: 'Mars/Olympus' }] }, /post\[0\]\.timezone: expected an IANA timezone/);
    bad({ distribution: 'debian', post: [{ kind: 'locale', locale: 'en_US' }] }, /post\[0\]\.locale: expected a locale such as en_US\.UTF-8/);
    bad({ distribution: 'debian', post: [{ kind: 'locale', locale: 'xx_YY.UTF-8' }] }, /glibc does not know xx_YY/);
  });

  it('knows timezones and locales without the host having them', () => {
    assert.equal(checkTimezone('Europe/Berlin'), undefined);
    assert.equal(checkTimezone('UTC'), undefined);
    assert.ok(checkTimezone('europe/berlin'));
    assert.ok(checkTimezone('../../etc/passwd'));
    assert.equal(checkLocale('en_US.UTF-8'), undefined);
    assert.equal(checkLocale('C.UTF-8'), undefined);
    assert.equal(checkLocale('sr_RS.UTF-8@latin'), undefined);
  });

  it('rejects unreadable key and password files and private keys', () => {
    bad({ distribution: 'debian', post: [{ kind: 'sshd', authorizedKeys: join(dir, 'missing.pub') }] }, /post\[0\]\.authorizedKeys: expected the path of a readable public key file \(no such file\)/);
    const priv = join(dir, 'id');
    writeFileSync(priv, '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
    bad({ distribution: 'debian', post: [{ kind: 'sshd', authorizedKeys: priv }] }, /this is a private key/);
    bad({ distribution: 'debian', post: [{ kind: 'root-password', passwordFile: join(dir, 'nope') }] }, /post\[0\]\.passwordFile: expected the path of a readable file/);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    bad({ distribution: 'debian', post: [{ kind: 'root-password', passwordFile: empty }] }, /it is empty/);
    bad({ distribution: 'debian', post: [{ kind: 'root-password' }] }, /post\[0\]\.password: expected a password or a passwordFile/);
  });

  it('rejects unknown fields, kinds, releases and variants with the known ones', () => {
    bad({ distribution: 'debian', relase: 'bookworm' }, /relase: expected a known field/);
    bad({ distribution: 'debian', post: [{ kind: 'sshd', prot: 22 }] }, /post\[0\]\.prot: expected a field of a sshd step \(port, authorizedKeys, socketActivated\)/);
    bad({ distribution: 'debian', post: [{ kind: 'reboot' }] }, /post\[0\]\.kind: expected one of hostname, /);
    bad({ distribution: 'debian', release: 'potato' }, /release: expected a Debian release, got "potato"/);
    bad({ distribution: 'debian', variant: 'huge' }, /variant: expected a Debian variant/);
    bad({ distribution: 'arch' }, /distribution: expected "debian" or "fedora"/);
    bad({ distribution: 'fedora', release: '18' }, /release: expected a Fedora release number/);
    bad({ distribution: 'debian', include: ['ok', 'not ok'] }, /include\[1\]: expected a package name/);
    bad({ distribution: 'debian', mirror: 'ftp.example/debian' }, /mirror: expected an http/);
  });

  it('extend keeps the base, merges packages and appends post steps', () => {
    const base = recipes.debian({ release: 'bookworm', include: ['curl'], post: [{ kind: 'hostname', hostname: 'base' }] });
    const web = extend(base, { variant: 'boot', include: ['nginx', 'curl'], post: [{ kind: 'console-login' }] });
    assert.deepEqual(web, { distribution: 'debian', release: 'bookworm', variant: 'boot', include: ['curl', 'nginx'], post: [{ kind: 'hostname', hostname: 'base' }, { kind: 'console-login' }] });
    assert.deepEqual(base.post, [{ kind: 'hostname', hostname: 'base' }]);
  });

  it('loads a recipe file: a plain object, a function of the helpers, and bad files with one message', async () => {
    const plain = join(dir, 'plain.recipe.mjs');
    writeFileSync(plain, "export default { distribution: 'debian', release: 'trixie', post: [{ kind: 'hostname', hostname: 'p1' }] };\n");
    assert.equal((await loadRecipeFile(plain)).release, 'trixie');
    const fn = join(dir, 'web.recipe.mjs');
    writeFileSync(fn, "export default ({ recipes, extend }) => extend(recipes.debian({ variant: 'boot' }), { post: [{ kind: 'sshd', port: 2200 }] });\n");
    assert.deepEqual(await loadRecipeFile(fn), { distribution: 'debian', variant: 'boot', post: [{ kind: 'sshd', port: 2200 }] });
    const broken = join(dir, 'bad.recipe.mjs');
    writeFileSync(broken, "export default { distribution: 'debian', post: [{ kind: 'sshd', port: 'x' }] };\n");
    await assert.rejects(loadRecipeFile(broken), { message: `invalid recipe \`${broken}\`: post[0].port: expected a port number 1-65535, got "x"` });
    await assert.rejects(loadRecipeFile(join(dir, 'none.mjs')), /cannot read recipe file .*no such file/);
    const syntax = join(dir, 'syntax.mjs');
    writeFileSync(syntax, 'export default {{;\n');
    await assert.rejects(loadRecipeFile(syntax), (e: unknown) => e instanceof UsageError && /^cannot load recipe file/.test(e.message));
    const unreadable = join(dir, 'dir.mjs');
    writeFileSync(unreadable, '');
    chmodSync(unreadable, 0);
    await assert.rejects(loadRecipeFile(unreadable), /cannot load recipe file .*no default export|cannot read recipe file/);
  });

  it('packagesFor adds what the steps need, per distribution', () => {
    assert.deepEqual(packagesFor([{ kind: 'sshd' }, { kind: 'locale', locale: 'de_DE.UTF-8' }, { kind: 'timezone', timezone: 'UTC' }], 'debian'), ['openssh-server', 'systemd-sysv', 'locales', 'tzdata']);
    assert.deepEqual(packagesFor([{ kind: 'sshd' }, { kind: 'locale', locale: 'de_DE.UTF-8' }], 'fedora'), ['openssh-server', 'systemd', 'glibc-langpack-de']);
    assert.deepEqual(packagesFor([{ kind: 'locale', locale: 'C.UTF-8' }], 'debian'), []);
  });
});

describe('bin/post-flags', () => {
  it('turns flags into post steps; sshd flags imply --ssh with port 2222 by default', () => {
    const a = answersFromFlags({ hostname: 'web1', authorizedKeys: '/k.pub', user: 'app', userGroups: ['users'] });
    assert.equal(a.ssh, true);
    assert.deepEqual(postSteps(a, 'boot'), [
      { kind: 'hostname', hostname: 'web1' },
      { kind: 'user', name: 'app', groups: ['users'], authorizedKeys: '/k.pub' },
      { kind: 'sshd', port: 2222, authorizedKeys: '/k.pub' },
      { kind: 'console-login' },
    ]);
  });

  it('names the flag of a bad value', () => {
    assert.throws(() => checkAnswers(answersFromFlags({ sshPort: 'x' })), { message: '--ssh-port: expected a port number 1-65535, got "x"' });
    assert.throws(() => checkAnswers(answersFromFlags({ hostname: 'a_b' })), /^UsageError: --hostname: expected a host name/);
    assert.throws(() => checkAnswers(answersFromFlags({ timezone: 'Nowhere/City' })), /--timezone: expected an IANA timezone/);
    assert.throws(() => checkAnswers(answersFromFlags({ locale: 'english' })), /--locale: expected a locale/);
    assert.throws(() => checkAnswers(answersFromFlags({ user: 'Root Admin' })), /--user: expected a user name/);
    assert.throws(() => checkAnswers(answersFromFlags({ authorizedKeys: '/nonexistent.pub' })), /--authorized-keys: expected the path of a readable public key file \(no such file\)/);
    assert.throws(() => requireAnswers(answersFromFlags({ sshPort: '2200' })), /--authorized-keys is missing/);
  });

  it('prints the command that starts the result', () => {
    assert.equal(startCommand('/srv/f19', { variant: 'boot' }), 'nsbox run -b -D /srv/f19');
    assert.equal(startCommand('/srv/x', { variant: 'minbase' }), 'nsbox run -D /srv/x');
    assert.equal(hostnameFromDir('/srv/Web_1'), 'web-1');
  });
});
