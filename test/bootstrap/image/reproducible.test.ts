import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsbox } from '../../helpers/cli.js';
import { tempDir } from '../helpers.js';

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const env = { SOURCE_DATE_EPOCH: '1704067200' };

describe('reproducible images from bootstraps with SOURCE_DATE_EPOCH', function () {
  this.timeout(30 * 60_000);
  let tmp: ReturnType<typeof tempDir>;
  before(() => (tmp = tempDir()));
  after(() => tmp.cleanup());

  it('two bootstraps of the same recipe from the same mirror give byte-identical tar, tar.zst and OCI output', () => {
    const sums: Record<string, string[]> = {};
    // the second run installs the essential set with dpkg where the first may restore it from the stage cache
    for (const [run, extra] of [['a', []], ['b', ['--no-stage-cache']]] as const) {
      const out = join(tmp.dir, run);
      mkdirSync(out);
      const dir = join(out, 'bookworm'); // the same base name: the tree's hostname comes from it
      const r = nsbox(['bootstrap', 'debian', dir, '--release', 'bookworm', '--yes', '--quiet', ...extra, '--output', join(out, 'tree.tar')], { env, timeout: 20 * 60_000 });
      assert.equal(r.status, 0, r.stderr);
      for (const target of [join(out, 'tree.tar.zst'), `oci-archive:${join(out, 'oci.tar')}:bookworm`]) {
        const e = nsbox(['export', '--quiet', dir, target], { env });
        assert.equal(e.status, 0, e.stderr);
      }
      sums[run] = ['tree.tar', 'tree.tar.zst', 'oci.tar'].map((f) => sha(join(out, f)));
    }
    assert.deepEqual(sums.b, sums.a);
  });

  it('a bootstrap with --output and no directory writes the same archive and leaves no tree behind', () => {
    const r = nsbox(['bootstrap', 'debian', '--release', 'bookworm', '--yes', '--quiet', '--output', join(tmp.dir, 'bookworm.tar')], { env, timeout: 20 * 60_000 });
    assert.equal(r.status, 0, r.stderr);
    // the temporary tree is named after the output, so its hostname is "bookworm" too
    assert.equal(sha(join(tmp.dir, 'bookworm.tar')), sha(join(tmp.dir, 'a', 'tree.tar')));
    assert.deepEqual(readdirSync(tmp.dir).sort(), ['a', 'b', 'bookworm.tar']);
  });
});
