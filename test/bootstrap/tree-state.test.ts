import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { MARKER, RECORD, beginTree, clearIncompleteTree, finishTree, inspectTree } from '../../bootstrap/tree-state.js';
import { tempDir } from './helpers.js';

const recipe = { distribution: 'debian', release: 'trixie', arch: 'amd64', variant: 'minbase' };

describe('bootstrap/tree-state', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('marks a new tree incomplete first and complete only at the end, leaving the top level clean', async () => {
    const dir = join(tmp.dir, 'tree');
    assert.equal((await inspectTree(dir)).kind, 'missing');
    await beginTree(dir, recipe);
    assert.equal(JSON.parse(readFileSync(join(dir, MARKER), 'utf8')).state, 'incomplete');
    assert.equal((await inspectTree(dir)).kind, 'incomplete');
    mkdirSync(join(dir, 'usr'));
    const rec = await finishTree(dir);
    assert.equal(rec.state, 'complete');
    assert.equal(existsSync(join(dir, MARKER)), false);
    const s = await inspectTree(dir);
    assert.equal(s.kind, 'complete');
    assert.deepEqual(s.record?.recipe, recipe);
    assert.ok(s.record?.finished && JSON.parse(readFileSync(join(dir, RECORD), 'utf8')).finished);
  });

  it('refuses a non-empty directory nsbox did not create, unless forced', async () => {
    writeFileSync(join(tmp.dir, 'precious'), 'x');
    assert.equal((await inspectTree(tmp.dir)).kind, 'foreign');
    await assert.rejects(beginTree(tmp.dir, recipe), (e: unknown) => e instanceof UsageError && /not created by nsbox/.test(e.message) && /--force/.test(e.hint ?? ''));
    await beginTree(tmp.dir, recipe, { force: true });
    assert.equal(readFileSync(join(tmp.dir, 'precious'), 'utf8'), 'x');
  });

  it('accepts an empty directory', async () => {
    assert.equal((await inspectTree(tmp.dir)).kind, 'empty');
    await beginTree(tmp.dir, recipe);
  });

  it('restarts an interrupted bootstrap from an empty tree', async () => {
    const dir = join(tmp.dir, 'tree');
    await beginTree(dir, recipe);
    mkdirSync(join(dir, 'usr/bin'), { recursive: true });
    writeFileSync(join(dir, 'usr/bin/half'), '');
    // Pretend the run died: its pid is gone.
    const m = JSON.parse(readFileSync(join(dir, MARKER), 'utf8'));
    writeFileSync(join(dir, MARKER), JSON.stringify({ ...m, pid: 2 ** 22 + 1 }));
    const s = await inspectTree(dir);
    assert.equal(s.kind, 'incomplete');
    assert.equal(s.running, false);
    await beginTree(dir, recipe);
    assert.equal(existsSync(join(dir, 'usr')), false);
    assert.equal((await inspectTree(dir)).kind, 'incomplete');
  });

  it('refuses a finished tree and clearing anything but an interrupted one', async () => {
    const dir = join(tmp.dir, 'tree');
    await beginTree(dir, recipe);
    await finishTree(dir);
    await assert.rejects(beginTree(dir, recipe), /already holds a finished nsbox tree/);
    await assert.rejects(clearIncompleteTree(dir), /not an interrupted nsbox bootstrap/);
  });
});
