/**
 * examples/provision.mjs, run as a user would: `import ... from 'nsbox'`
 * resolves to the built library (dist/), two trees come out of one shared
 * recipe with their own post steps.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';

describe('examples/provision.mjs', function () {
  this.timeout(40 * 60_000);
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'nsbox-example-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'example', '-f', join(work, 'key')]);
    // The example imports 'nsbox' (this package, by its own name): it needs the compiled library.
    // tsc emits even when some file has a type error (typechecking is `npm run typecheck`'s job, not this test's).
    spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.json')], { cwd: REPO, stdio: 'ignore' });
    assert.ok(existsSync(join(REPO, 'dist/index.js')), 'tsc did not produce dist/index.js');
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('builds web (sshd on 2222) and db (a user) from one shared recipe', async () => {
    const child = spawn(process.execPath, [join(REPO, 'examples/provision.mjs'), join(work, 'srv'), join(work, 'key.pub')], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, out);
    const web = join(work, 'srv/web');
    const db = join(work, 'srv/db');
    // shared steps in both
    for (const t of [web, db]) {
      assert.equal(readFileSync(join(t, 'etc/timezone'), 'utf8'), 'Etc/UTC\n');
      assert.ok(existsSync(join(t, 'usr/bin/less')));
    }
    // web: sshd on 2222, root's key
    assert.equal(readFileSync(join(web, 'etc/hostname'), 'utf8'), 'web\n');
    assert.match(readFileSync(join(web, 'etc/ssh/sshd_config.d/10-nsbox.conf'), 'utf8'), /^Port 2222$/m);
    assert.equal(readFileSync(join(web, 'root/.ssh/authorized_keys'), 'utf8'), readFileSync(join(work, 'key.pub'), 'utf8'));
    assert.equal(readFileSync(join(web, 'etc/motd'), 'utf8'), 'web: provisioned by nsbox\n');
    // db: the app user, no sshd
    assert.equal(readFileSync(join(db, 'etc/hostname'), 'utf8'), 'db\n');
    assert.match(readFileSync(join(db, 'etc/passwd'), 'utf8'), /^app:x:1000:1000::\/home\/app:\/bin\/bash$/m);
    assert.ok(!existsSync(join(db, 'etc/ssh/sshd_config')));
    assert.equal(statSync(join(db, 'etc/app/db.conf')).uid, 1000);
    // progress events and the run() check printed
    assert.match(out, /web: download done/);
    assert.match(out, /^web: Debian GNU\/Linux 12 \(bookworm\)$/m);
    assert.match(out, /^db: Debian GNU\/Linux 12 \(bookworm\)$/m);
  });
});
