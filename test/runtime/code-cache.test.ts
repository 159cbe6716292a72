import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeBusyboxTree } from '../helpers/tree.js';
import { REPO } from '../helpers/cli.js';

// The CLI loader (bin/bundle.mjs writes dist/cli/nsbox.cjs) keeps V8 code caches beside the bundles.
describe('nsbox CLI: V8 code caches', () => {
  // a copy of the bundles at the same depth, so that node_modules and the native helper resolve alike
  const dir = join(REPO, 'dist', `cli-cache-test-${process.pid}`);
  let tree: string;
  const caches = () => readdirSync(dir).filter((n) => n.endsWith('.v8cache')).sort();
  const cli = (args: string[]) => spawnSync(process.execPath, [join(dir, 'nsbox.cjs'), ...args], { encoding: 'utf8' });

  before(() => {
    mkdirSync(dir);
    for (const n of readdirSync(join(REPO, 'dist/cli')).filter((f) => f.endsWith('.cjs'))) cpSync(join(REPO, 'dist/cli', n), join(dir, n));
    tree = makeBusyboxTree({ name: 'nsbox-cache-' });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(tree, { recursive: true, force: true });
  });

  it('are not written by --help, a refused flag or a failed set-up', () => {
    assert.equal(cli(['bootstrap', '--help']).status, 0);
    assert.equal(cli(['run', '--help']).status, 0);
    assert.equal(cli(['run', '--bogus']).status, 125);
    assert.equal(cli(['run', '-D', join(tree, 'missing'), '/bin/true']).status, 125);
    assert.deepEqual(caches(), []);
  });

  it('are written by a run whose container ran, whatever its status, for nsbox run alone; and then kept', () => {
    assert.equal(cli(['run', '-q', '-D', tree, '/bin/false']).status, 1);
    assert.deepEqual(caches(), [`.main.cjs.run.${process.version}.${process.arch}.v8cache`]);
    const file = join(dir, caches()[0]);
    const before = statSync(file).mtimeMs;
    assert.equal(cli(['run', '-q', '-D', tree, '/bin/true']).status, 0);
    assert.equal(statSync(file).mtimeMs, before, 'an accepted cache is not rewritten');
    assert.equal(cli(['list']).status, 0);
    assert.equal(caches().length, 1, 'other commands keep theirs apart and write none');
  });
});
