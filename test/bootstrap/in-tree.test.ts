import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NsboxError } from '../../errors.js';
import { runInTree } from '../../bootstrap/in-tree.js';
import { makeBusyboxTree } from '../helpers/tree.js';

describe('bootstrap/in-tree', function () {
  this.timeout(60_000);
  let tree: string;
  before(() => (tree = makeBusyboxTree({ name: 'nsbox-in-tree-' })));
  after(() => rmSync(tree, { recursive: true, force: true }));

  it('runs a command inside the tree and appends its output to the log', async () => {
    const log = join(tree, 'build.log');
    await runInTree(tree, ['sh', '-c', 'cat /nsbox-tree-marker; echo "$DEBIAN_FRONTEND"'], { logFile: log, what: 'look around' });
    const text = readFileSync(log, 'utf8');
    assert.match(text, /# nsbox: sh -c/);
    assert.match(text, /inside\nnoninteractive\n/);
  });

  it('fails with one line that carries the errors the command printed last', async () => {
    const log = join(tree, 'fail.log');
    const script = 'echo Unpacking x; echo "dpkg: error processing archive /x.deb (--install):"; echo " trying to overwrite /y"; echo "Errors were encountered while processing:"; exit 3';
    await assert.rejects(runInTree(tree, ['sh', '-c', script], { logFile: log, what: 'install the packages with dpkg' }), (e: unknown) => {
      assert.ok(e instanceof NsboxError);
      assert.equal(e.message.includes('\n'), false);
      assert.match(e.message, /^cannot install the packages with dpkg: `sh -c .*` exited with status 3: dpkg: error processing archive \/x\.deb/);
      assert.match(e.hint ?? '', /fail\.log/);
      return true;
    });
  });

  it('says "no space left on device" when the command ran out of space', async () => {
    const log = join(tree, 'full.log');
    await assert.rejects(runInTree(tree, ['sh', '-c', 'echo "dpkg: error: cannot write: No space left on device"; exit 2'], { logFile: log, what: 'configure' }), (e: unknown) => {
      assert.ok(e instanceof NsboxError);
      assert.equal(e.code, 'no-space');
      assert.equal(e.message, 'cannot configure: no space left on device');
      return true;
    });
  });
});
