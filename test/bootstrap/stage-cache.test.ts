import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from '../../bootstrap/cache.js';
import { beginSnapshot, restoreStage, stageKey } from '../../bootstrap/stage-cache.js';
import { tempDir } from './helpers.js';

/** A small tree with what a stage has: modes, owners, links, a /usr part and an /etc part. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'var/log'), { recursive: true });
  writeFileSync(join(root, 'usr/bin/tool'), 'binary\n');
  chmodSync(join(root, 'usr/bin/tool'), 0o4755);
  linkSync(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-alias'));
  symlinkSync('usr/bin', join(root, 'bin'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/empty'), '');
  writeFileSync(join(root, 'etc/owned'), 'x');
  chownSync(join(root, 'etc/owned'), 1000, 1001);
  writeFileSync(join(root, 'var/log/build.log'), 'left out\n');
}

/** path → "type mode uid gid content-or-target" for every entry. */
function describe_(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, r));
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(join(root, r))}` : st.isFile() ? readFileSync(join(root, r), 'utf8') : 'dir';
      out.set(r, `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.nlink : ''} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

describe('bootstrap/stage-cache', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('stores a tree and restores it exactly (modes, owners, hard and symbolic links), minus what is excluded', async () => {
    const src = join(tmp.dir, 'src');
    makeTree(src);
    const cache = new Cache({ dir: join(tmp.dir, 'cache') });
    const key = stageKey({ test: 1 });
    const snap = await beginSnapshot(cache, key, src, { meta: { diverted: ['/usr/sbin/x'] }, liveRoots: ['usr'], exclude: ['var/log/build.log'] });
    assert.equal(await snap.finish(), true);
    const dest = join(tmp.dir, 'dest');
    mkdirSync(dest);
    const meta = await restoreStage<{ diverted: string[] }>(cache, key, dest);
    assert.deepEqual(meta, { diverted: ['/usr/sbin/x'] });
    const want = describe_(src);
    want.delete('var/log/build.log');
    assert.deepEqual(describe_(dest), want);
    assert.equal(lstatSync(join(dest, 'usr/bin/tool')).ino, lstatSync(join(dest, 'usr/bin/tool-alias')).ino);
  });

  it('finds nothing under an unknown key', async () => {
    const cache = new Cache({ dir: join(tmp.dir, 'cache') });
    mkdirSync(join(tmp.dir, 'dest'));
    assert.equal(await restoreStage(cache, stageKey({ other: true }), join(tmp.dir, 'dest')), undefined);
  });

  it('stores nothing when a file under the live roots changes while it is read', async () => {
    const src = join(tmp.dir, 'src');
    makeTree(src);
    const cache = new Cache({ dir: join(tmp.dir, 'cache') });
    const key = stageKey({ test: 2 });
    const snap = await beginSnapshot(cache, key, src, { meta: {}, liveRoots: ['usr'] });
    // The next stage writes into a file the snapshot has listed but not read yet.
    writeFileSync(join(src, 'usr/bin/tool'), 'changed in place\n', { flag: 'r+' });
    assert.equal(await snap.finish(), false);
    assert.equal(existsSync(join(cache.dir, 'stages', `${key}.tar.zst`)), false);
    assert.deepEqual(readdirSync(join(cache.dir, 'tmp')), []);
  });

  it('leaves out what the next stage adds under the live roots while the snapshot is read', async () => {
    const src = join(tmp.dir, 'src');
    makeTree(src);
    const cache = new Cache({ dir: join(tmp.dir, 'cache') });
    const key = stageKey({ test: 4 });
    const snap = await beginSnapshot(cache, key, src, { meta: {}, liveRoots: ['usr'] });
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(join(src, 'usr/bin/added-later'), 'new\n');
    mkdirSync(join(src, 'usr/share/later'), { recursive: true });
    assert.equal(await snap.finish(), true);
    const dest = join(tmp.dir, 'dest');
    mkdirSync(dest);
    await restoreStage(cache, key, dest);
    assert.equal(existsSync(join(dest, 'usr/bin/tool')), true);
    assert.equal(existsSync(join(dest, 'usr/bin/added-later')), false);
    assert.equal(existsSync(join(dest, 'usr/share')), false);
  });

  it('does not store a tree with entries tar cannot carry exactly (a FIFO)', async () => {
    const src = join(tmp.dir, 'src');
    makeTree(src);
    execFileSync('mkfifo', [join(src, 'etc/fifo')]);
    const cache = new Cache({ dir: join(tmp.dir, 'cache') });
    const snap = await beginSnapshot(cache, stageKey({ test: 3 }), src, { meta: {}, liveRoots: ['usr'] });
    assert.equal(await snap.finish(), false);
  });
});
