import assert from 'node:assert/strict';
import { checkImageName, imageNameFrom, parseOutput, parseSource } from '../../../bootstrap/image/spec.js';
import { parseCommand } from '../../../bootstrap/image/oci-config.js';

describe('bootstrap/image/spec', () => {
  it('picks the output format from the name, as mmdebstrap does', () => {
    assert.deepEqual(parseOutput('x.tar', '/w'), { kind: 'tar', path: '/w/x.tar', compression: 'none' });
    assert.deepEqual(parseOutput('x.tar.gz', '/w'), { kind: 'tar', path: '/w/x.tar.gz', compression: 'gzip' });
    assert.deepEqual(parseOutput('x.tgz', '/w'), { kind: 'tar', path: '/w/x.tgz', compression: 'gzip' });
    assert.deepEqual(parseOutput('/o/x.tar.xz'), { kind: 'tar', path: '/o/x.tar.xz', compression: 'xz' });
    assert.deepEqual(parseOutput('x.tar.zst', '/w'), { kind: 'tar', path: '/w/x.tar.zst', compression: 'zstd' });
    assert.deepEqual(parseOutput('x.tzst', '/w'), { kind: 'tar', path: '/w/x.tzst', compression: 'zstd' });
    assert.deepEqual(parseOutput('x.squashfs', '/w'), { kind: 'squashfs', path: '/w/x.squashfs' });
    assert.deepEqual(parseOutput('x.sqfs', '/w'), { kind: 'squashfs', path: '/w/x.sqfs' });
    assert.deepEqual(parseOutput('-'), { kind: 'tar', path: '-', compression: 'none' });
  });

  it('reads oci: and oci-archive: names with an optional tag, latest by default', () => {
    assert.deepEqual(parseOutput('oci:img', '/w'), { kind: 'oci', path: '/w/img', tag: 'latest', archive: false });
    assert.deepEqual(parseOutput('oci:/srv/img:12.5', '/w'), { kind: 'oci', path: '/srv/img', tag: '12.5', archive: false });
    assert.deepEqual(parseOutput('oci-archive:a.tar:v1', '/w'), { kind: 'oci', path: '/w/a.tar', tag: 'v1', archive: true });
    assert.deepEqual(parseOutput('oci:/srv/a:b/img', '/w'), { kind: 'oci', path: '/srv/a:b/img', tag: 'latest', archive: false });
    assert.deepEqual(parseSource('oci:/srv/img', '/w'), { kind: 'oci', path: '/srv/img', tag: undefined, archive: false });
    assert.deepEqual(parseSource('x.tar.zst', '/w'), { kind: 'file', path: '/w/x.tar.zst' });
    assert.deepEqual(parseSource('-'), { kind: 'file', path: '-' });
  });

  it('refuses names whose format it cannot tell or does not write, and bad tags, saying what works', () => {
    assert.throws(() => parseOutput('x.zip'), /cannot tell the output format of `x\.zip` from its name/);
    assert.throws(() => parseOutput('x.tar.bz2'), /nsbox does not write that format/);
    assert.throws(() => parseOutput('oci:img:-bad'), /invalid tag `-bad`/);
    assert.throws(() => parseOutput('oci:'), /missing path/);
  });

  it('derives image names from file names as machinectl does', () => {
    assert.equal(imageNameFrom({ kind: 'file', path: '/t/bookworm.tar.zst' }), 'bookworm');
    assert.equal(imageNameFrom({ kind: 'oci', path: '/t/web.oci.tar', archive: true }), 'web');
    assert.equal(imageNameFrom({ kind: 'file', path: '-' }), undefined);
    assert.equal(checkImageName('deb-12.1'), 'deb-12.1');
    assert.throws(() => checkImageName('../x'), /invalid image name/);
  });

  it('reads --cmd and --entrypoint as a JSON array or words', () => {
    assert.deepEqual(parseCommand('["/bin/sh","-c","echo a b"]', '--cmd'), ['/bin/sh', '-c', 'echo a b']);
    assert.deepEqual(parseCommand('/bin/bash -l', '--cmd'), ['/bin/bash', '-l']);
    assert.deepEqual(parseCommand('', '--cmd'), []);
    assert.throws(() => parseCommand('[1]', '--entrypoint'), /invalid --entrypoint/);
  });
});
