import assert from 'node:assert/strict';
import { Arrivals, deferred } from '../../bootstrap/deferred.js';

describe('bootstrap/deferred', () => {
  it('settles a deferred once', async () => {
    const d = deferred<number>();
    d.resolve(1);
    d.reject(new Error('late'));
    assert.equal(await d.promise, 1);
    assert.equal(d.settled, true);
  });

  it('hands arrivals to waits made before and after they land', async () => {
    const a = new Arrivals<string, string>();
    const early = a.wait('x');
    a.arrive('x', '/cache/x');
    assert.equal(await early, '/cache/x');
    assert.equal(await a.wait('x'), '/cache/x');
  });

  it('after stop, rejects what is waited for, also waits made later, and keeps what arrived', async () => {
    const a = new Arrivals<string, string>();
    a.arrive('here', '/cache/here');
    const before = a.wait('missing');
    a.stop(new Error('stopped'));
    assert.equal(a.signal.aborted, true);
    await assert.rejects(before, /stopped/);
    // a wait after stop must not hang: nothing will arrive any more
    await assert.rejects(a.wait('never'), /stopped/);
    assert.equal(await a.wait('here'), '/cache/here');
  });
});
