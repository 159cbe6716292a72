import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { VerifyError } from '../../../errors.js';
import { extractCpio, readCpio } from '../../../bootstrap/archive/cpio.js';
import { have, sh, tempDir } from '../helpers.js';

/** Everything but directory and symlink mtimes (cpio -i restores neither; nsbox does). */
function listing(dir: string): string {
  return sh('sh', ['-c', `cd "$1" && find . -mindepth 1 -printf '%p %y %m %U %G %l %s %n ' \\( \\( -type d -o -type l \\) -printf '-\\n' -o -printf '%T@\\n' \\) | sort`, 'sh', dir]);
}

describe('bootstrap/archive/cpio', function () {
  let tmp: ReturnType<typeof tempDir>;
  before(function () {
    if (!have('cpio')) this.skip();
  });
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  function build(): { archive: string; src: string } {
    const src = join(tmp.dir, 'src');
    sh('sh', ['-c', `
      set -e; mkdir -p "$1" && cd "$1"
      mkdir -p usr/bin usr/lib etc
      printf 'shared data' > usr/bin/a && ln usr/bin/a usr/bin/b && ln usr/bin/a usr/lib/c
      printf 'suid' > usr/bin/su && chown 12:34 usr/bin/su && chmod 4755 usr/bin/su
      ln -s /usr/bin/a etc/abs && ln -s ../usr/bin/b etc/rel
      : > empty && mkfifo usr/fifo
      find . -exec touch -h -d '2021-03-04 05:06:07' {} +
    `, 'sh', src]);
    const archive = join(tmp.dir, 'a.cpio');
    sh('sh', ['-c', 'cd "$1" && find . | cpio -o -H newc --quiet > "$2"', 'sh', src, archive]);
    return { archive, src };
  }

  it('extracts a newc archive like cpio -i, with hard links sharing one inode', async () => {
    const { archive } = build();
    const ours = join(tmp.dir, 'ours');
    const paths = await extractCpio([readFileSync(archive)], ours);
    const theirs = join(tmp.dir, 'theirs');
    mkdirSync(theirs);
    sh('sh', ['-c', 'cd "$1" && cpio -idmu --quiet < "$2"', 'sh', theirs, archive]);
    assert.equal(listing(ours), listing(theirs));
    assert.equal(statSync(join(ours, 'usr/bin/a')).ino, statSync(join(ours, 'usr/lib/c')).ino);
    assert.equal(statSync(join(ours, 'usr/bin/a')).nlink, 3);
    assert.equal(readFileSync(join(ours, 'usr/bin/b'), 'utf8'), 'shared data');
    assert.equal(lstatSync(join(ours, 'usr/bin/su')).mode & 0o7777, 0o4755);
    assert.ok(paths.includes('/usr/bin/b') && paths.includes('/usr/lib/c') && paths.includes('/etc/abs'));
  });

  it('reads entries with their inode, link count and symlink target', async () => {
    const { archive } = build();
    const seen = new Map<string, { ino: number; nlink: number; size: number; target?: string }>();
    for await (const { entry, data } of readCpio([readFileSync(archive)])) {
      for await (const _ of data) void _;
      seen.set(entry.path, { ino: entry.ino, nlink: entry.nlink, size: entry.size, target: entry.linkTarget });
    }
    assert.equal(seen.get('etc/abs')?.target, '/usr/bin/a');
    assert.equal(seen.get('usr/bin/a')?.nlink, 3);
    assert.equal(seen.get('usr/bin/a')?.ino, seen.get('usr/lib/c')?.ino);
    const sizes = ['usr/bin/a', 'usr/bin/b', 'usr/lib/c'].map((p) => seen.get(p)!.size);
    assert.equal(sizes.filter((s) => s === 11).length, 1, 'the data comes with one of the links only');
  });

  it('refuses entries that climb out of the tree', async () => {
    // GNU cpio will not write such a name: build the hostile entry by hand.
    const name = Buffer.from('../evil\0');
    const hdr = '070701' + [1, 0o100644, 0, 0, 1, 0, 1, 0, 0, 0, 0, name.length, 0].map((n) => n.toString(16).padStart(8, '0')).join('');
    const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
    const trailerName = Buffer.from('TRAILER!!!\0');
    const trailer = '070701' + [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, trailerName.length, 0].map((n) => n.toString(16).padStart(8, '0')).join('');
    const bytes = Buffer.concat([Buffer.from(hdr), name, pad(110 + name.length), Buffer.from('x'), pad(1), Buffer.from(trailer), trailerName, pad(110 + trailerName.length)]);
    await assert.rejects(extractCpio([bytes], join(tmp.dir, 'root')), (e: unknown) => e instanceof VerifyError && /leaves the tree/.test(e.message));
  });

  it('reports a bad magic and a truncated archive as VerifyErrors', async () => {
    const { archive } = build();
    const data = readFileSync(archive);
    const bad = Buffer.from(data);
    bad[5] = 0x37; // 070707: old portable format, not newc
    await assert.rejects(extractCpio([bad], join(tmp.dir, 'r1')), (e: unknown) => e instanceof VerifyError && /magic `070707`/.test(e.message));
    await assert.rejects(extractCpio([data.subarray(0, 300)], join(tmp.dir, 'r2')), VerifyError);
  });
});
