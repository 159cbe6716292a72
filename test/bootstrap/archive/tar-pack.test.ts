import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, openSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { encodeHeader, trailer } from '../../../bootstrap/archive/tar-header.js';
import { packTree } from '../../../bootstrap/archive/tar-pack.js';
import { extractTar, readTar } from '../../../bootstrap/archive/tar.js';
import { makeFileTypesTree } from '../../helpers/file-types-tree.js';
import { treeManifest } from '../../helpers/tree-manifest.js';
import { tempDir } from '../helpers.js';

/** mmdebstrap's own GNU tar options for its tarballs. */
function gnuTar(dir: string, out: string, clamp?: number): void {
  const time = clamp === undefined ? [] : [`--mtime=@${clamp}`, '--clamp-mtime'];
  execFileSync('tar', ['-C', dir, '--sort=name', ...time, '--numeric-owner', '--one-file-system', '--format=pax',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '--xattrs', '-cf', out, '.'], { stdio: ['ignore', 'ignore', 'ignore'] });
}

async function ours(dir: string, out: string, opts: Parameters<typeof packTree>[1] = {}) {
  const { stream, stats } = packTree(dir, opts);
  await pipeline(stream, createWriteStream('', { fd: openSync(out, 'w') }));
  return stats;
}

describe('bootstrap/archive/tar-pack', () => {
  let tree: string;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => { tree = await makeFileTypesTree(); });
  after(() => rmSync(tree, { recursive: true, force: true }));
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('writes byte for byte the archive GNU tar writes with mmdebstrap\'s options, with and without a clamped mtime', async () => {
    for (const clamp of [undefined, 1700000000]) {
      gnuTar(tree, join(tmp.dir, 'gnu.tar'), clamp);
      const stats = await ours(tree, join(tmp.dir, 'ours.tar'), { clampMtime: clamp });
      assert.ok(readFileSync(join(tmp.dir, 'ours.tar')).equals(readFileSync(join(tmp.dir, 'gnu.tar'))), `archives differ (clamp ${clamp})`);
      assert.equal(stats.skippedSockets, 1);
      assert.equal(stats.archiveBytes, readFileSync(join(tmp.dir, 'ours.tar')).length);
    }
  });

  it('gives back the same tree when GNU tar extracts it: every type, mode, owner, xattr and file capability', async () => {
    await ours(tree, join(tmp.dir, 'ours.tar'));
    mkdirSync(join(tmp.dir, 'x'));
    execFileSync('tar', ['-C', join(tmp.dir, 'x'), '--xattrs', '--xattrs-include=*', '-xpf', join(tmp.dir, 'ours.tar')]);
    assert.deepEqual(await treeManifest(join(tmp.dir, 'x'), { mtimes: true }), await treeManifest(tree, { mtimes: true, sockets: false }));
  });

  it('gives back the same tree through nsbox\'s own extractor (UTF-8 names; the root directory is the caller\'s)', async () => {
    const utf8 = await makeFileTypesTree({ nonUtf8: false });
    try {
      await ours(utf8, join(tmp.dir, 'ours.tar'));
      const { createReadStream } = await import('node:fs');
      await extractTar(createReadStream(join(tmp.dir, 'ours.tar')), join(tmp.dir, 'x'));
      const rootless = (m: string[]) => m.filter((l) => !l.startsWith('. '));
      assert.deepEqual(rootless(await treeManifest(join(tmp.dir, 'x'), { mtimes: true })), rootless(await treeManifest(utf8, { mtimes: true, sockets: false })));
    } finally {
      rmSync(utf8, { recursive: true, force: true });
    }
  });

  it('leaves device nodes out on request (OCI layers) and refuses names an OCI layer reads as whiteouts', async () => {
    const stats = await ours(tree, join(tmp.dir, 'layer.tar'), { devices: false });
    assert.equal(stats.skippedDevices, 2);
    const names: string[] = [];
    const { createReadStream } = await import('node:fs');
    for await (const { entry, data } of readTar(createReadStream(join(tmp.dir, 'layer.tar')))) {
      names.push(entry.path);
      for await (const _ of data) void _;
    }
    assert.ok(names.includes('./dev/') && !names.includes('./dev/null') && !names.includes('./dev/loop9'));
    const odd = join(tmp.dir, 'odd');
    mkdirSync(odd);
    writeFileSync(join(odd, '.wh.secret'), '');
    await assert.rejects(ours(odd, join(tmp.dir, 'odd.tar'), { refuseWhiteoutNames: true }), /cannot export `\.wh\.secret` into an OCI layer/);
  });

  it('encodes single headers as ustar blocks and ends archives on a whole 10240-byte record', () => {
    const h = encodeHeader({ path: './etc/hostname', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 5 });
    assert.equal(h.length, 512);
    assert.equal(h.subarray(257, 263).toString('latin1'), 'ustar\0');
    const withPax = encodeHeader({ path: `./${'x'.repeat(200)}`, type: 'file', mode: 0o644, uid: 3_000_000, gid: 0, mtime: 0, xattrs: [['security.capability', Buffer.alloc(20, 1)]] });
    assert.ok(withPax.length > 512 && withPax.length % 512 === 0);
    assert.match(withPax.toString('latin1'), /path=\.\/x{200}\n/);
    assert.match(withPax.toString('latin1'), /uid=3000000\n/);
    assert.equal((512 + trailer(512).length) % 10240, 0);
  });
});
