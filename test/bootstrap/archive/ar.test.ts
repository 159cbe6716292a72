import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { VerifyError } from '../../../errors.js';
import { readAr } from '../../../bootstrap/archive/ar.js';
import { extractTar, readTarFiles } from '../../../bootstrap/archive/tar.js';
import { compressionFromName, decompressStream } from '../../../bootstrap/decompress.js';
import { have, sh, tempDir } from '../helpers.js';

describe('bootstrap/archive/ar', function () {
  let tmp: ReturnType<typeof tempDir>;
  before(function () {
    if (!have('dpkg-deb') || !have('ar')) this.skip();
  });
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  /** Builds a small .deb with dpkg-deb, compressed with `z` (xz, zstd, gzip, none). */
  function buildDeb(z: string): string {
    const src = join(tmp.dir, `pkg-${z}`);
    sh('sh', ['-c', `
      set -e; mkdir -p "$1/DEBIAN" "$1/usr/bin" "$1/usr/share/doc/hello"
      printf 'Package: hello\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@example.org>\\nDescription: test\\n' > "$1/DEBIAN/control"
      printf '#!/bin/sh\\necho hi\\n' > "$1/usr/bin/hello" && chmod 755 "$1/usr/bin/hello"
      head -c 300000 /dev/urandom > "$1/usr/share/doc/hello/blob"
      ln -s hello "$1/usr/bin/hi"
    `, 'sh', src]);
    const deb = join(tmp.dir, `hello-${z}.deb`);
    sh('dpkg-deb', ['--root-owner-group', `-Z${z}`, '-b', src, deb]);
    return deb;
  }

  it('lists the same members as ar t', async () => {
    const deb = buildDeb('xz');
    const names: string[] = [];
    for await (const m of readAr(Readable.from([readFileSync(deb)]))) names.push(m.name);
    assert.deepEqual(names, sh('ar', ['t', deb]).trim().split('\n'));
  });

  for (const z of ['xz', 'zstd', 'gzip', 'none']) {
    it(`unpacks a ${z} .deb into the same tree as dpkg-deb -x and reads its control file`, async function () {
      if (z === 'zstd' && !/zstd/.test(sh('dpkg-deb', ['--help']))) this.skip();
      const deb = buildDeb(z);
      const ours = join(tmp.dir, 'ours');
      let control = '';
      for await (const m of readAr(Readable.from([readFileSync(deb)]))) {
        if (m.name === 'debian-binary') continue;
        const tar = await decompressStream(Readable.from(m.data), compressionFromName(m.name));
        if (m.name.startsWith('control.tar')) control = (await readTarFiles(tar)).get('control')!.toString();
        else await extractTar(tar, ours);
      }
      const theirs = join(tmp.dir, 'theirs');
      sh('dpkg-deb', ['-x', deb, theirs]);
      sh('diff', ['-r', '--no-dereference', ours, theirs]);
      // Directory mtimes differ on purpose: dpkg-deb -x (GNU tar) creates symlinks after restoring them, so
      // usr/bin keeps the extraction time there; nsbox restores every directory's mtime from the archive.
      const list = (d: string) => sh('sh', ['-c', `cd "$1" && find . -mindepth 1 -printf '%p %m %u %g %l %s ' \\( -type d -printf '-\\n' -o -printf '%T@\\n' \\) | sort`, 'sh', d]);
      assert.equal(list(ours), list(theirs));
      assert.match(control, /^Package: hello$/m);
    });
  }

  it('reports a file without the ar magic as a VerifyError', async () => {
    await assert.rejects(async () => {
      for await (const _ of readAr([Buffer.from('not an archive at all')])) void _;
    }, (e: unknown) => e instanceof VerifyError && /bad magic/.test(e.message));
  });

  it('reports a truncated member as a VerifyError', async () => {
    const deb = readFileSync(buildDeb('none'));
    await assert.rejects(async () => {
      for await (const m of readAr([deb.subarray(0, deb.length - 500)])) for await (const _ of m.data) void _;
    }, VerifyError);
  });
});
