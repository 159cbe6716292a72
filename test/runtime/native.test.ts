import assert from 'node:assert/strict';
import { readlinkSync, rmSync, existsSync } from 'node:fs';
import { makeBusyboxTree } from '../helpers/tree.js';
import { native, waitExit } from '../../runtime/native.js';
import { buildPlan } from '../../runtime/plan.js';
import { normalizeRunOptions } from '../../runtime/options.js';
import { encodePlan } from '../../runtime/wire.js';

describe('native helper: the rendezvous between clone and the container set-up', function () {
  this.timeout(30_000);
  let tree: string;
  before(() => { tree = makeBusyboxTree(); });
  after(() => { rmSync(tree, { recursive: true, force: true }); });

  const plan = (command: string[]) => {
    const opts = normalizeRunOptions({ directory: tree, command, console: 'pipe' }, { isTTY: false });
    return { ...buildPlan(opts, { uuid: '00000000-0000-4000-8000-000000000000', resolvConf: { kind: 'missing' }, ttyGid: 5, home: '/root', argv: command }), rendezvous: true };
  };

  it('holds the child in its new namespaces, before any set-up, until resumed', async () => {
    const started = native().spawnPending(encodePlan(plan(['/bin/sh', '-c', 'exit 7'])));
    assert.ok(!('error' in started), JSON.stringify(started));
    const { pid } = started as Exclude<typeof started, { error: string }>;
    // Namespaces exist already; the tree is not its root yet and nothing was exec'd.
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/pid_for_children`), readlinkSync('/proc/self/ns/pid_for_children'));
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'));
    assert.equal(readlinkSync(`/proc/${pid}/root`), '/');
    assert.equal(readlinkSync(`/proc/${pid}/exe`), readlinkSync('/proc/self/exe'));
    const resumed = (started as { resume: (f?: number[]) => unknown }).resume();
    assert.deepEqual(resumed, { pid });
    const status = await waitExit(pid);
    assert.equal((status >> 8) & 0xff, 7);
  });

  it('reports a failure after the rendezvous as one line with its exit code', () => {
    const started = native().spawnPending(encodePlan(plan(['/no/such/command'])));
    assert.ok(!('error' in started));
    const r = (started as { resume: () => unknown }).resume();
    assert.deepEqual(r, { error: 'cannot execute `/no/such/command`: No such file or directory', code: 127 });
  });

  it('kills and reaps a child that is aborted at the rendezvous', () => {
    const started = native().spawnPending(encodePlan(plan(['/bin/true'])));
    assert.ok(!('error' in started));
    const { pid, abort, resume } = started as { pid: number; abort: () => void; resume: () => unknown };
    abort();
    assert.equal(existsSync(`/proc/${pid}`), false);
    assert.throws(() => resume(), /already resumed or aborted/);
  });
});
