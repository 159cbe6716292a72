import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsbox, NSBOX } from '../../helpers/cli.js';
import { makeFileTypesTree } from '../../helpers/file-types-tree.js';
import { ociLayoutOf, tarOf } from '../../helpers/oci-craft.js';
import { makeBusyboxTree } from '../../helpers/tree.js';
import { treeManifest } from '../../helpers/tree-manifest.js';
import { tempDir } from '../helpers.js';

const MACHINES = '/var/lib/machines';
const PREFIX = `nsbox-test-${process.pid}`;

/** Images (and half-built ones) this run left in /var/lib/machines. */
function ours(): string[] {
  return existsSync(MACHINES) ? readdirSync(MACHINES).filter((n) => n.includes(PREFIX)) : [];
}

function ok(r: ReturnType<typeof nsbox>): ReturnType<typeof nsbox> {
  assert.equal(r.status, 0, `${r.stderr}${r.stdout}`);
  return r;
}

describe('nsbox export and nsbox import', function () {
  this.timeout(180_000);
  let tree: string;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => { tree = await makeFileTypesTree({ nonUtf8: false }); });
  after(() => {
    rmSync(tree, { recursive: true, force: true });
    for (const n of ours()) rmSync(join(MACHINES, n), { recursive: true, force: true });
  });
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('writes tar, tar.gz, tar.xz and tar.zst that hold the same archive, and a tar on stdout', () => {
    const plain = join(tmp.dir, 't.tar');
    ok(nsbox(['export', tree, plain]));
    const bytes = readFileSync(plain);
    for (const [ext, tool] of [['tar.gz', 'gzip'], ['tar.xz', 'xz'], ['tar.zst', 'zstd']]) {
      const out = join(tmp.dir, `t.${ext}`);
      const r = ok(nsbox(['export', tree, out]));
      assert.match(r.stdout, new RegExp(`Exported .* to .*t\\.${ext.replace('.', '\\.')} \\(${ext.replace('.', '\\.')}, `));
      assert.ok(execFileSync(tool, ['-dc', out], { maxBuffer: 1 << 28 }).equals(bytes), `${ext} holds another archive`);
    }
    const piped = spawnSync(process.execPath, [NSBOX, 'export', tree, '-'], { maxBuffer: 1 << 28 });
    assert.equal(piped.status, 0, piped.stderr.toString());
    assert.ok(piped.stdout.equals(bytes), 'the tar on stdout differs');
    assert.match(piped.stderr.toString(), /Exported .* to stdout/);
    assert.deepEqual(readdirSync(tmp.dir).filter((n) => n.startsWith('.')), [], 'temporary files left beside the outputs');
  });

  it('writes a squashfs image that unsquashfs unpacks to the same tree', async () => {
    const out = join(tmp.dir, 't.squashfs');
    ok(nsbox(['export', tree, out]));
    execFileSync('unsquashfs', ['-q', '-n', '-d', join(tmp.dir, 'x'), out], { stdio: 'ignore' });
    assert.deepEqual(await treeManifest(join(tmp.dir, 'x')), await treeManifest(tree));
  });

  it('round trip: export to tar.zst, oci and oci-archive, import back, and the tree is the same (devices stay out of OCI layers)', async () => {
    const want = await treeManifest(tree, { mtimes: true, sockets: false });
    for (const [out, devices] of [[join(tmp.dir, 'rt.tar.zst'), true], [`oci:${join(tmp.dir, 'rt-oci')}:v1`, false], [`oci-archive:${join(tmp.dir, 'rt.oci.tar')}`, false]] as const) {
      ok(nsbox(['export', tree, out]));
      const name = `${PREFIX}-rt`;
      const r = ok(nsbox(['import', '--force', out, name]));
      assert.match(r.stdout, new RegExp(`Imported .* as ${name} in ${MACHINES}/${name}`));
      const got = await treeManifest(join(MACHINES, name), { mtimes: true });
      assert.deepEqual(got, devices ? want : want.filter((l) => !/ [cb] \d+ /.test(l) && !/^dev\/(null|loop9) /.test(l)), out);
    }
    assert.deepEqual(ours(), [`${PREFIX}-rt`], 'temporary import trees left behind');
  });

  it('writes OCI layouts that umoci unpacks to the same tree, with the platform, a default command and the settings given', async () => {
    const layout = join(tmp.dir, 'img');
    ok(nsbox(['export', tree, `oci:${layout}:v1`, '--arch', 'amd64', '--entrypoint', '["/bin/tool"]', '--cmd', '--help now', '-e', 'LANG=C.UTF-8', '--workdir', '/srv', '--label', 'org.example=1']));
    ok(nsbox(['export', tree, `oci:${layout}:v2`, '--arch', 'arm64']));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    assert.deepEqual(index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name']), ['v1', 'v2']);
    const blob = (d: string) => JSON.parse(readFileSync(join(layout, 'blobs/sha256', d.slice(7)), 'utf8'));
    const manifest = blob(index.manifests[0].digest);
    assert.equal(manifest.layers.length, 1);
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const config = blob(manifest.config.digest);
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.os, 'linux');
    assert.deepEqual(config.config.Entrypoint, ['/bin/tool']);
    assert.deepEqual(config.config.Cmd, ['--help', 'now']);
    assert.deepEqual(config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8']);
    assert.equal(config.config.WorkingDir, '/srv');
    assert.deepEqual(config.config.Labels, { 'org.example': '1' });
    assert.equal(blob(blob(index.manifests[1].digest).config.digest).architecture, 'arm64');
    execFileSync('umoci', ['unpack', '--image', `${layout}:v1`, join(tmp.dir, 'bundle')], { stdio: 'ignore' });
    const strip = (m: string[]) => m.filter((l) => !l.startsWith('. ') && !/^dev\/(null|loop9) /.test(l));
    assert.deepEqual(strip(await treeManifest(join(tmp.dir, 'bundle/rootfs'), { mtimes: true })), strip(await treeManifest(tree, { mtimes: true, sockets: false })));
  });

  it('applies layers made by umoci with their whiteouts as umoci does', async () => {
    const layout = join(tmp.dir, 'layered');
    const bundle = join(tmp.dir, 'b');
    const run = (...a: string[]) => execFileSync('umoci', a, { stdio: 'ignore' });
    run('init', '--layout', layout);
    run('new', '--image', `${layout}:t`);
    // umoci cannot put a socket into a layer
    const src = join(tmp.dir, 'src');
    execFileSync('cp', ['-a', `${tree}/.`, src]);
    rmSync(join(src, 'srv/socket'));
    run('insert', '--image', `${layout}:t`, src, '/');
    run('unpack', '--image', `${layout}:t`, bundle);
    const root = join(bundle, 'rootfs');
    rmSync(join(root, 'bin/tool'));
    rmSync(join(root, 'srv/deep'), { recursive: true });
    rmSync(join(root, 'home/user'), { recursive: true });
    mkdirSync(join(root, 'home/user'));
    writeFileSync(join(root, 'home/user/new'), 'a new file\n');
    writeFileSync(join(root, 'etc/added'), 'added\n');
    run('repack', '--image', `${layout}:t`, bundle);
    rmSync(bundle, { recursive: true });
    // the top layer says the deletions with whiteouts
    const idx = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const top = JSON.parse(readFileSync(join(layout, 'blobs/sha256', idx.manifests[0].digest.slice(7)), 'utf8')).layers.at(-1);
    const members = execFileSync('tar', ['-tzf', join(layout, 'blobs/sha256', top.digest.slice(7))], { encoding: 'utf8' });
    assert.match(members, /^bin\/\.wh\.tool$/m);
    assert.match(members, /^srv\/\.wh\.deep$/m);
    run('unpack', '--image', `${layout}:t`, bundle);
    const name = `${PREFIX}-layers`;
    const r = ok(nsbox(['import', `oci:${layout}:t`, name]));
    assert.match(r.stdout, /from 2 layers/); // insert, then repack
    const strip = (m: string[]) => m.filter((l) => !l.startsWith('. '));
    assert.deepEqual(strip(await treeManifest(join(MACHINES, name), { mtimes: true })), strip(await treeManifest(join(bundle, 'rootfs'), { mtimes: true })));
    assert.ok(!existsSync(join(MACHINES, name, 'srv/deep')) && existsSync(join(MACHINES, name, 'bin/tool-hardlink')));
  });

  it('applies opaque whiteouts to what lower layers left, not to what the layer itself writes', () => {
    const layout = join(tmp.dir, 'opq');
    const base = tarOf([
      { path: 'a/', type: 'directory' }, { path: 'a/b/', type: 'directory' }, { path: 'a/b/c/', type: 'directory' },
      { path: 'a/b/c/bar', body: 'bar' }, { path: 'a/keep-not', body: 'x' }, { path: 'gone', body: 'x' }, { path: 'stays', body: 'x' },
    ]);
    // the opaque marker after the layer's own entries, and a whiteout of something this layer wrote: both apply to lower layers only
    const upper = tarOf([
      { path: 'a/', type: 'directory' }, { path: 'a/b/', type: 'directory' }, { path: 'a/b/c/', type: 'directory' }, { path: 'a/b/c/foo', body: 'foo' },
      { path: 'a/.wh..wh..opq' }, { path: '.wh.gone' }, { path: 'new', body: 'n' }, { path: '.wh.new' }, { path: '.wh..wh.plnk' },
    ]);
    ociLayoutOf(layout, [base, upper]);
    const name = `${PREFIX}-opq`;
    ok(nsbox(['import', `oci:${layout}`, name]));
    const files = execFileSync('find', ['.', '-mindepth', '1'], { cwd: join(MACHINES, name), encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    assert.deepEqual(files, ['./a', './a/b', './a/b/c', './a/b/c/foo', './new', './stays']);
  });

  it('writes nothing outside the target for hostile tars and OCI layers: `..`, absolute paths, a symlink followed by a file through it', () => {
    const outside = join(tmp.dir, 'outside');
    const cases: Array<[string, Buffer, number]> = [
      ['dotdot', tarOf([{ path: 'ok', body: 'x' }, { path: `../../../../../../..${outside}/evil`, body: 'x' }]), 5],
      ['absolute', tarOf([{ path: `${outside}/evil`, body: 'x' }]), 5],
      ['hardlink', tarOf([{ path: 'h', type: 'hardlink', linkTarget: '../../../../etc/passwd' }]), 5],
      ['symlink', tarOf([{ path: 'esc', type: 'symlink', linkTarget: outside }, { path: 'esc/evil', body: 'x' }, { path: 'rel', type: 'symlink', linkTarget: '../../../../../../..' }, { path: `rel${outside}/evil2`, body: 'y' }]), 0],
    ];
    for (const [what, tar, code] of cases) {
      for (const form of ['tar', 'oci'] as const) {
        const name = `${PREFIX}-hostile-${what}-${form}`;
        let src = join(tmp.dir, `${what}.tar`);
        writeFileSync(src, tar);
        if (form === 'oci') {
          ociLayoutOf(join(tmp.dir, `${what}-oci`), [tar]);
          src = `oci:${join(tmp.dir, `${what}-oci`)}`;
        }
        const r = nsbox(['import', src, name]);
        assert.equal(r.status, code, `${what} ${form}: ${r.stderr}`);
        if (code) {
          assert.match(r.stderr, /^nsbox: cannot import `.*`: (path leaves the tree|absolute path in the archive|hard link to an absolute path|path leaves the tree).*\(the image is malformed or malicious; nothing was imported\)\n$/);
          assert.ok(!existsSync(join(MACHINES, name)));
        } else {
          assert.equal(readFileSync(join(MACHINES, name, outside, 'evil'), 'utf8'), 'x', 'the file lands inside the tree');
          assert.equal(readFileSync(join(MACHINES, name, outside, 'evil2'), 'utf8'), 'y');
        }
        assert.ok(!existsSync(outside), `${what} ${form} wrote outside the target`);
      }
    }
    const wh = join(tmp.dir, 'wh');
    ociLayoutOf(wh, [tarOf([{ path: 'x', body: 'x' }]), tarOf([{ path: '.wh...' }])]);
    const r = nsbox(['import', `oci:${wh}`, `${PREFIX}-wh`]);
    assert.equal(r.status, 5);
    assert.match(r.stderr, /whiteout of an invalid name/);
    assert.ok(!ours().some((n) => n.startsWith('.#')), 'temporary trees left behind');
  });

  it('refuses a layer whose bytes do not match its digest, and leaves nothing behind', () => {
    const layout = join(tmp.dir, 'bad');
    ociLayoutOf(layout, [tarOf([{ path: 'f', body: 'x'.repeat(100000) }])], { corrupt: 0 });
    const r = nsbox(['import', `oci:${layout}`, `${PREFIX}-bad`]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /^nsbox: cannot (read OCI blob sha256:[0-9a-f]{12}: its content does not match its digest|import .*)/);
    assert.deepEqual(ours().filter((n) => n.includes('-bad')), []);
  });

  it('runs an imported image with -M NAME and no -D, lists it with list --all, and replaces it only with --force', () => {
    const bb = makeBusyboxTree();
    try {
      const name = `${PREFIX}-run`;
      ok(nsbox(['export', bb, join(tmp.dir, 'bb.tar.gz')]));
      const imported = ok(nsbox(['import', join(tmp.dir, 'bb.tar.gz'), name]));
      assert.match(imported.stdout, new RegExp(`Run it with: nsbox run -M ${name}`));
      const r = ok(nsbox(['run', '-M', name, '/bin/sh', '-c', 'cat /nsbox-tree-marker; hostname']));
      assert.equal(r.stdout, `inside\n${name}\n`);
      const list = ok(nsbox(['list', '--all']));
      assert.match(list.stdout, new RegExp(`^${name} +stopped +\\S+ +${MACHINES}/${name}$`, 'm'));
      const json = JSON.parse(ok(nsbox(['list', '--all', '--json'])).stdout);
      assert.ok(json.images.some((i: { name: string; path: string; running: boolean }) => i.name === name && i.path === `${MACHINES}/${name}` && !i.running));
      assert.ok(!/nsbox-test/.test(ok(nsbox(['list'])).stdout), 'plain list shows images');
      const again = nsbox(['import', join(tmp.dir, 'bb.tar.gz'), name]);
      assert.equal(again.status, 2);
      assert.match(again.stderr, /an image of that name exists in \/var\/lib\/machines \(pass --force/);
      writeFileSync(join(tmp.dir, 'other.tar'), tarOf([{ path: 'replaced', body: 'yes' }]));
      ok(nsbox(['import', '--force', join(tmp.dir, 'other.tar'), name]));
      assert.deepEqual(readdirSync(join(MACHINES, name)), ['replaced']);
      const missing = nsbox(['run', '-M', `${PREFIX}-none`, '/bin/true']);
      assert.equal(missing.status, 125);
      assert.match(missing.stderr, /cannot run `.*-none`: no machine image of that name in \/etc\/machines, .*\/var\/lib\/machines/);
      const byName = ok(nsbox(['export', name, join(tmp.dir, 'byname.tar')]));
      assert.match(byName.stdout, new RegExp(`Exported ${MACHINES}/${name} to`));
    } finally {
      rmSync(bb, { recursive: true, force: true });
    }
  });

  it('imports a tar from stdin, names it from the file otherwise, and an interrupted import leaves nothing', async () => {
    const tar = tarOf([{ path: 'etc/', type: 'directory' }, { path: 'etc/hostname', body: 'stdin\n' }]);
    const r = spawnSync(process.execPath, [NSBOX, 'import', '-', `${PREFIX}-stdin`], { input: tar, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(MACHINES, `${PREFIX}-stdin`, 'etc/hostname'), 'utf8'), 'stdin\n');
    writeFileSync(join(tmp.dir, `${PREFIX}-named.tar.gz`), execFileSync('gzip', ['-c'], { input: tar }));
    ok(nsbox(['import', join(tmp.dir, `${PREFIX}-named.tar.gz`)]));
    assert.ok(existsSync(join(MACHINES, `${PREFIX}-named`, 'etc/hostname')));
    // half an archive on stdin, then Ctrl-C: exit 130, no image, no temporary tree
    const child = spawn(process.execPath, [NSBOX, 'import', '-', `${PREFIX}-cut`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdin.write(tarOf([{ path: 'big', body: Buffer.alloc(1 << 20, 7) }]).subarray(0, 600_000));
    for (let i = 0; i < 100 && !ours().some((n) => n.startsWith(`.#${PREFIX}-cut`)); i++) await new Promise((res) => setTimeout(res, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child.on('close', res));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted: nothing was imported/);
    assert.deepEqual(ours().filter((n) => n.includes('-cut')), []);
  });

  it('refuses bad input with one line, the documented exit code and nothing written', () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['export', tree, join(tmp.dir, 'x.zip')], 2, /cannot tell the output format of `.*x\.zip` from its name \(name it \*\.tar/],
      [['export', join(tmp.dir, 'nope'), join(tmp.dir, 'x.tar')], 2, /cannot export `.*nope`: no such directory/],
      [['export', tree, join(tree, 'inside.tar')], 2, /inside the tree it exports/],
      [['export', tree, join(tmp.dir, 'no/such/dir.tar')], 2, /directory `.*no\/such` does not exist/],
      [['export', tree, `oci:${join(tmp.dir, 'o')}:bad:tag!`], 2, /invalid tag `tag!`/],
      [['export', tree, `oci:${join(tmp.dir, 'o')}`, '--cmd', '[1,2]'], 2, /invalid --cmd/],
      [['export', tree, `oci:${tree}`], 2, /it exists and is not an OCI image layout|inside the tree/],
      [['import', join(tmp.dir, 'missing.tar'), `${PREFIX}-m`], 2, /cannot import `.*missing\.tar`: no such file or directory/],
      [['import', join(tmp.dir, 'any.tar'), 'bad/name'], 2, /invalid image name `bad\/name`/],
      [['import', `oci:${tmp.dir}`, `${PREFIX}-m`], 2, /not an OCI image layout/],
      [['export'], 2, /missing required argument/],
    ];
    for (const [args, code, re] of cases) {
      const r = nsbox(args);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const odd = join(tmp.dir, 'odd');
    mkdirSync(odd);
    writeFileSync(join(odd, '.wh.x'), '');
    const wh = nsbox(['export', odd, `oci-archive:${join(tmp.dir, 'odd.tar')}`]);
    assert.equal(wh.status, 1, wh.stderr);
    assert.match(wh.stderr, /^nsbox: cannot export `\.wh\.x` into an OCI layer: names beginning with `\.wh\.` mark deletions there \(rename or remove it/);
    rmSync(odd, { recursive: true });
    const half = join(tmp.dir, 'half');
    mkdirSync(half);
    writeFileSync(join(half, '.nsbox-bootstrap.json'), JSON.stringify({ tool: 'nsbox', version: 1, state: 'incomplete', recipe: {}, started: '' }));
    const r = nsbox(['export', half, join(tmp.dir, 'h.tar')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /its nsbox bootstrap is incomplete/);
    assert.deepEqual(readdirSync(tmp.dir).sort(), ['half']);
    writeFileSync(join(tmp.dir, 'latin1.tar'), tarOf([{ path: Buffer.from('caf\xe9', 'latin1'), body: 'x' }]));
    const latin1 = nsbox(['import', join(tmp.dir, 'latin1.tar'), `${PREFIX}-m`]);
    assert.equal(latin1.status, 5);
    assert.match(latin1.stderr, /its name or link target is not UTF-8/);
    assert.deepEqual(ours().filter((n) => n.includes('-m')), []);
  });
});
