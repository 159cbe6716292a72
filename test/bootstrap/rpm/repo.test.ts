/**
 * Against the synthetic Fedora repository (repo-builder.ts): repodata
 * parsing, header signature and digest verification on real rpmbuild /
 * rpmsign output, and the resolver compared with Debian's dnf.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync, writeFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTrustedKeys, type TrustedKeys } from '../../../bootstrap/pgp-lite.js';
import { VerifyError } from '../../../errors.js';
import { compressionFromName, createDecompressor } from '../../../bootstrap/decompress.js';
import { parseRepomd, repomdRecord } from '../../../bootstrap/rpm/repomd.js';
import { parsePrimary, parseFilelists, nevra, type RpmPackage } from '../../../bootstrap/rpm/primary.js';
import { readRpm, verifyRpm, fileEntries, scriptlets, payloadStream, TAG } from '../../../bootstrap/rpm/header.js';
import { resolve } from '../../../bootstrap/rpm/resolve.js';
import { buildFedoraTestRepo, type TestRepo } from './repo-builder.js';

const haveTools = ['rpmbuild', 'rpmsign', 'createrepo_c', 'gpg'].every((t) => spawnSync('which', [t]).status === 0);

async function readMeta(repoDir: string, type: string) {
  const md = parseRepomd(readFileSync(join(repoDir, 'repodata/repomd.xml'), 'utf8'));
  const rec = repomdRecord(md, type)!;
  const file = join(repoDir, rec.location);
  const dec = await createDecompressor(compressionFromName(rec.location));
  return { rec, file, stream: createReadStream(file).pipe(dec) };
}

async function loadPool(repo: TestRepo): Promise<RpmPackage[]> {
  const out: RpmPackage[] = [];
  for (const [name, dir] of [['fedora', repo.releaseDir], ['updates', repo.updatesDir]] as const) {
    out.push(...(await parsePrimary((await readMeta(dir, 'primary')).stream, { repo: name })));
  }
  return out;
}

function rpmsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile() && e.name.endsWith('.rpm')) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  return out;
}

describe('synthetic Fedora repository', function () {
  this.timeout(600_000);
  let repo: TestRepo;
  let work: string;
  let keys: TrustedKeys;
  let pool: RpmPackage[];

  before(async function () {
    if (!haveTools) this.skip();
    work = mkdtempSync(join(tmpdir(), 'nsbox-rpmrepo-'));
    repo = await buildFedoraTestRepo(join(work, 'mirror'), { release: 40 });
    keys = readTrustedKeys([readFileSync(repo.keyFile)]);
    pool = await loadPool(repo);
  });
  after(async () => {
    await repo?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('lists primary and filelists in repomd.xml with checksums that match the files', async () => {
    for (const type of ['primary', 'filelists']) {
      const { rec, file } = await readMeta(repo.releaseDir, type);
      assert.equal(statSync(file).size, rec.size);
      assert.equal(createHash(rec.checksum.algo).update(readFileSync(file)).digest('hex'), rec.checksum.hex);
      assert.ok(rec.openChecksum && rec.openSize);
    }
  });

  it('reads every package from primary with versions, dependencies and file provides', () => {
    const byName = (n: string) => pool.filter((p) => p.name === n);
    assert.equal(pool.length, rpmsUnder(repo.root).length);
    const bash = byName('bash')[0]!;
    assert.equal(bash.arch, 'x86_64');
    assert.deepEqual(bash.evr, { epoch: 0, version: '5.2.15', release: '2.fc40' });
    assert.ok(bash.provides.some((d) => d.name === '/bin/sh'));
    assert.ok(bash.files.includes('/usr/bin/bash'), 'primary carries */bin/* files');
    assert.ok(bash.requires.some((d) => d.name === 'libtinfo.so.6()(64bit)'));
    const tf = byName('nsbox-testfiles').map((p) => `${p.evr.version}@${p.repo}`).sort();
    assert.deepEqual(tf, ['1.0@fedora', '1.1@updates']);
    const t11 = byName('nsbox-testfiles').find((p) => p.evr.version === '1.1')!;
    assert.ok(t11.requires.some((d) => d.name === 'bash' && d.op === 'GE' && d.evr?.version === '5.0'));
    assert.ok(t11.requires.some((d) => d.name === '/bin/sh' && d.pre), 'Requires(pre) from the %pre scriptlet');
    assert.ok(byName('tooluser')[0]!.requires.some((d) => d.name === '(mta-a or mta-b)'));
    assert.ok(byName('newtool')[0]!.obsoletes.some((d) => d.name === 'oldtool' && d.op === 'LT'));
  });

  it('reads all files of a package from filelists', async () => {
    const bash = pool.find((p) => p.name === 'bash')!;
    const files = await parseFilelists((await readMeta(repo.releaseDir, 'filelists')).stream, (id) => id === bash.checksum.hex);
    assert.ok(files.get(bash.checksum.hex)!.includes('/usr/bin/sh'));
  });

  it('agrees with rpm on the headers of every built package', async () => {
    for (const f of rpmsUnder(repo.releaseDir).slice(0, 12)) {
      const rpm = await readRpm(f);
      const q = execFileSync('rpm', ['-qp', '--nosignature', '--qf', '%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{PAYLOADCOMPRESSOR}|[%{FILENAMES}\\n]', f], { encoding: 'utf8' });
      const [head, ...names] = q.split('|').slice(0, 5).concat(q.split('|').slice(5).join('|').split('\n').filter(Boolean));
      assert.equal(rpm.header.str(TAG.NAME), head);
      assert.deepEqual(fileEntries(rpm.header).map((e) => e.path), names.slice(4));
    }
  });

  it('verifies the header signature and payload digest of every package', async () => {
    for (const f of rpmsUnder(repo.root).filter((p) => !p.includes('-extra/'))) await verifyRpm(f, { keys });
  });

  it('reads scriptlets, hard links, symlinks and the xz payload of nsbox-testfiles', async () => {
    const f = rpmsUnder(repo.updatesDir).find((p) => p.includes('nsbox-testfiles'))!;
    const rpm = await verifyRpm(f, { keys });
    assert.equal(rpm.header.str(TAG.PAYLOADCOMPRESSOR), 'xz');
    assert.match(scriptlets(rpm.header).post!, /post-saw-data/);
    const entries = fileEntries(rpm.header);
    const data = entries.find((e) => e.path.endsWith('/data'))!;
    assert.equal(entries.find((e) => e.path.endsWith('/data-hardlink'))!.inode, data.inode);
    assert.equal(entries.find((e) => e.path.endsWith('/data-symlink'))!.linkTo, 'data');
    assert.equal(entries.find((e) => e.path === '/usr/bin/nsbox-test')!.mode & 0o7777, 0o4755);
    let cpio = Buffer.alloc(0);
    for await (const c of await payloadStream(rpm)) cpio = Buffer.concat([cpio, c as Buffer]);
    assert.equal(cpio.subarray(0, 6).toString(), '070701');
    assert.ok(cpio.includes(Buffer.from('nsbox test data 1.1')));
  });

  it('refuses a package whose header or payload was modified', async () => {
    const f = rpmsUnder(repo.releaseDir).find((p) => p.includes('/setup-'))!;
    const rpm = await readRpm(f);
    for (const [what, at] of [['header', rpm.headerStart + rpm.header.bytes.length - 20], ['payload', rpm.payloadStart + 40]] as const) {
      const bad = join(work, `tampered-${what}.rpm`);
      copyFileSync(f, bad);
      const buf = readFileSync(bad);
      buf[at] ^= 0x01;
      writeFileSync(bad, buf);
      await assert.rejects(verifyRpm(bad, { keys }), (e: unknown) => e instanceof VerifyError && /setup-2\.14\.5-2\.fc40\.noarch/.test(e.message), what);
    }
    const cut = join(work, 'truncated.rpm');
    writeFileSync(cut, readFileSync(f).subarray(0, rpm.payloadStart + 10));
    await assert.rejects(verifyRpm(cut, { keys }), /truncated|size/);
  });

  it('refuses a package signed by another key, naming that key, and an unsigned one', async () => {
    const other = readTrustedKeys([readFileSync(repo.otherKeyFile)]);
    const otherId = other.certificates[0]!.keyId;
    await assert.rejects(verifyRpm(repo.otherKeyRpm, { keys }), (e: unknown) => e instanceof VerifyError && e.message.includes(otherId) && /not the release's key/.test(e.message));
    await verifyRpm(repo.otherKeyRpm, { keys: other });
    await assert.rejects(verifyRpm(repo.unsignedRpm, { keys }), /not signed/);
    await verifyRpm(repo.unsignedRpm, { keys, noSignature: true });
  });

  describe('resolver compared with dnf', () => {
    const dnfOk = existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import dnf']).status === 0;
    const DNF_RESOLVE = `
import sys, dnf, tempfile
root = tempfile.mkdtemp()
base = dnf.Base()
c = base.conf
c.installroot = root
c.cachedir = root + '/cache'
c.reposdir = []
c.substitutions['releasever'] = sys.argv[1]
c.substitutions['basearch'] = 'x86_64'
c.install_weak_deps = sys.argv[2] == '1'
c.gpgcheck = False
base.repos.add_new_repo('fedora', c, baseurl=[sys.argv[3]])
base.repos.add_new_repo('updates', c, baseurl=[sys.argv[4]])
base.fill_sack(load_system_repo=False)
base.install_specs(sys.argv[5:])
base.resolve()
for p in sorted(str(x) for x in base.transaction.install_set):
    print(p)
`;
    // async: the loopback server lives in this process and must keep serving while dnf runs
    const dnfResolve = async (install: string[], weak: boolean) =>
      (await promisify(execFile)('/usr/bin/python3', ['-c', DNF_RESOLVE, '40', weak ? '1' : '0', repo.releaseUrl, repo.updatesUrl, ...install], { encoding: 'utf8' })).stdout.trim().split('\n').sort();
    const ours = (install: string[], weak: boolean) => resolve({ pool, install, arch: 'x86_64', withRecommends: weak }).packages.map(nevra).sort();

    for (const [label, install, weak] of [
      ['the minimal variant', ['bash', 'coreutils', 'rpm', 'dnf', 'fedora-release'], false],
      ['rich, obsoleting and versioned dependencies', ['tooluser'], false],
      ['the same with weak dependencies', ['tooluser', 'rpm'], true],
      ['a request by file path and by provide', ['/usr/bin/tool', 'system-release'], false],
    ] as const) {
      it(`picks the same set as dnf for ${label}`, async function () {
        if (!dnfOk) this.skip();
        assert.deepEqual(ours([...install], weak), await dnfResolve([...install], weak));
      });
    }

    it('installs with dnf --installroot and the tree has the same packages (peer check)', async function () {
      if (!dnfOk) this.skip();
      const root = join(work, 'dnfroot');
      const install = ['bash', 'coreutils', 'rpm', 'dnf', 'fedora-release', 'nsbox-testfiles'];
      const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
        const c = execFile('dnf', ['-y', '-q', `--installroot=${root}`, '--releasever=40', '--setopt=reposdir=/nonexistent', '--setopt=install_weak_deps=False', '--nogpgcheck',
        `--repofrompath=fedora,${repo.releaseUrl}`, `--repofrompath=updates,${repo.updatesUrl}`, '--repo=fedora', '--repo=updates', 'install', ...install], { encoding: 'utf8' }, (err, _out, stderr) => res({ status: err ? 1 : 0, stderr }));
        void c;
      });
      assert.equal(r.status, 0, r.stderr);
      const q = spawnSync('rpm', ['--root', root, '--dbpath', '/root/.rpmdb', '-qa', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n'], { encoding: 'utf8' });
      const installed = q.stdout.trim().split('\n').filter(Boolean).sort();
      assert.deepEqual(installed, ours(install, false));
      assert.match(readFileSync(join(root, 'var/lib/nsbox-test/scriptlets'), 'utf8'), /pre 1\npost 1/);
    });
  });
});
