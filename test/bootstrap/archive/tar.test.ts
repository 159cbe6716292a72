import assert from 'node:assert/strict';
import { createReadStream, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { VerifyError } from '../../../errors.js';
import { extractTar, readTarFiles } from '../../../bootstrap/archive/tar.js';
import { have, sh, tempDir } from '../helpers.js';

/** A tar built in memory with tar-stream's packer (for hostile archives). */
async function tarOf(entries: Array<{ name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string; mode?: number }>): Promise<Buffer> {
  const p = pack();
  for (const e of entries) p.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644) }, e.body ?? '');
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** One line per path: type, mode, owner, link target, size, mtime, link count, device numbers. */
function listing(dir: string): string {
  return sh('sh', ['-c', `cd "$1" && find . -mindepth 1 -printf '%p %y %m %U %G %l %s %T@ %n ' -exec stat -c '%t:%T' {} \\; | sort`, 'sh', dir]);
}

describe('bootstrap/archive/tar', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('extracts the same tree as GNU tar: modes, owners, hard links, symlinks, devices, FIFOs, long names, mtimes, capabilities', async function () {
    const src = join(tmp.dir, 'src');
    const script = `
      set -e; mkdir -p "$1" && cd "$1"
      mkdir -p usr/bin etc tmp var/mail "$(printf 'deep/%.0s' $(seq 1 30))"
      printf 'suid' > usr/bin/su && chmod 4755 usr/bin/su
      printf 'sgid' > usr/bin/wall && chown 1234:5678 usr/bin/wall && chmod 2755 usr/bin/wall
      chmod 1777 tmp && chown 0:8 var/mail && chmod 2775 var/mail
      printf 'long' > "$(printf 'deep/%.0s' $(seq 1 30))$(printf 'n%.0s' $(seq 1 150))"
      printf 'hard' > usr/bin/a && ln usr/bin/a usr/bin/b
      ln -s /etc/passwd etc/abs-link && ln -s ../usr/bin/a etc/rel-link
      mknod dev-null c 1 3 && mknod loop0 b 7 0 && mkfifo fifo && chmod 600 fifo
      printf 'ping' > usr/bin/ping && if command -v setcap >/dev/null; then setcap cap_net_raw+ep usr/bin/ping; fi
      find . -exec touch -h -d '2020-02-02 02:02:02.5' {} +
    `;
    sh('sh', ['-c', script, 'sh', src]);
    const archive = join(tmp.dir, 'a.tar');
    sh('tar', ['--xattrs', '--xattrs-include=*', '--format=pax', '-cpf', archive, '-C', src, '.']);

    const ours = join(tmp.dir, 'ours');
    const paths = await extractTar(createReadStream(archive), ours);
    const theirs = join(tmp.dir, 'theirs');
    mkdirSync(theirs);
    sh('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', archive, '-C', theirs]);

    const d = (() => { try { return sh("diff", ["-r", "--no-dereference", ours, theirs]); } catch (e) { return String((e as { stdout?: string }).stdout) + String((e as { stderr?: string }).stderr); } })();
    // diff only notes special files of the same type; their details are compared by listing().
    assert.equal(d.split('\n').filter((l) => l && !/^File .* is a (.*) while file .* is a \1$/.test(l)).join('\n'), '');
    assert.equal(listing(ours), listing(theirs));
    if (have('getcap')) {
      assert.match(sh('getcap', [join(ours, 'usr/bin/ping')]), /cap_net_raw[=+]ep/);
    }
    const tarList = sh('tar', ['-tf', archive]).trim().split('\n').map((p) => (p === './' ? '/.' : p.replace(/^\.\//, '/').replace(/\/$/, '')));
    assert.deepEqual(paths, tarList);
  });

  it('refuses an entry whose path climbs out of the tree with ..', async () => {
    const root = join(tmp.dir, 'root');
    const data = await tarOf([{ name: '../escaped', body: 'x' }]);
    await assert.rejects(extractTar([data], root), (e: unknown) => e instanceof VerifyError && /path leaves the tree/.test(e.message));
    assert.equal(existsSync(join(tmp.dir, 'escaped')), false);
  });

  it('never follows a symlink inside the tree to a place outside it', async () => {
    const root = join(tmp.dir, 'root');
    const outside = join(tmp.dir, 'outside');
    mkdirSync(outside);
    const data = await tarOf([
      { name: 'evil', type: 'symlink', linkname: outside },
      { name: 'evil/pwned', body: 'absolute' },
      { name: 'up', type: 'symlink', linkname: '../../../../..' },
      { name: 'up/escape', body: 'relative' },
    ]);
    await extractTar([data], root);
    assert.deepEqual(readdirSync(outside), []);
    assert.equal(readlinkSync(join(root, 'evil')), outside, 'absolute symlink kept verbatim');
    assert.equal(readFileSync(join(root, outside, 'pwned'), 'utf8'), 'absolute');
    assert.equal(readFileSync(join(root, 'escape'), 'utf8'), 'relative');
  });

  it('writes through the tree’s merged-/usr directory symlinks and keeps them, as dpkg does', async () => {
    const root = join(tmp.dir, 'root');
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    symlinkSync('usr/bin', join(root, 'bin'));
    const data = await tarOf([
      { name: './', type: 'directory' },
      { name: './bin/', type: 'directory' },
      { name: './bin/sh', body: '#!', mode: 0o755 },
    ]);
    const paths = await extractTar([data], root);
    assert.ok(lstatSync(join(root, 'bin')).isSymbolicLink());
    assert.equal(readFileSync(join(root, 'usr/bin/sh'), 'utf8'), '#!');
    assert.equal(lstatSync(join(root, 'usr/bin/sh')).mode & 0o7777, 0o755);
    assert.deepEqual(paths, ['/.', '/bin', '/bin/sh']);
  });

  it('replaces an existing file and an existing symlink at an entry’s path without following it', async () => {
    const root = join(tmp.dir, 'root');
    const victim = join(tmp.dir, 'victim');
    writeFileSync(victim, 'untouched');
    mkdirSync(root);
    writeFileSync(join(root, 'f'), 'old');
    symlinkSync(victim, join(root, 'l'));
    await extractTar([await tarOf([{ name: 'f', body: 'new' }, { name: 'l', body: 'replaced' }])], root);
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'new');
    assert.equal(readFileSync(join(root, 'l'), 'utf8'), 'replaced');
    assert.equal(readFileSync(victim, 'utf8'), 'untouched');
  });

  it('reports a tar with a corrupted header checksum as a VerifyError', async () => {
    const data = await tarOf([{ name: 'a', body: 'x' }]);
    data[10] ^= 0x20;
    await assert.rejects(extractTar([data], join(tmp.dir, 'r')), (e: unknown) => e instanceof VerifyError && /cannot read tar archive/.test(e.message));
  });

  it('reads the regular files of a small tar into memory', async () => {
    const data = await tarOf([{ name: './', type: 'directory' }, { name: './control', body: 'Package: hello\n' }, { name: './md5sums', body: 'x' }]);
    const files = await readTarFiles([data], (p) => p === 'control');
    assert.deepEqual([...files.keys()], ['control']);
    assert.equal(files.get('control')!.toString(), 'Package: hello\n');
  });
});
