import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VerifyError } from '../../errors.js';
import { Cache } from '../../bootstrap/cache.js';
import { fetchAll, type FetchItem } from '../../bootstrap/fetch.js';
import { HttpClient } from '../../bootstrap/http.js';
import type { ProgressEvent } from '../../bootstrap/progress.js';
import { serve, tempDir } from './helpers.js';

const sha = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');

describe('bootstrap/fetch', () => {
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 12; i++) files.set(`/pool/p${i}.deb`, Buffer.from(`package ${i} `.repeat(1000 + i * 500)));
  let tmp: ReturnType<typeof tempDir>;
  let http: HttpClient;
  let cache: Cache;
  beforeEach(() => {
    tmp = tempDir();
    http = new HttpClient({ retryDelayMs: 1 });
    cache = new Cache({ dir: join(tmp.dir, 'cache') });
  });
  afterEach(async () => {
    await http.close();
    tmp.cleanup();
  });

  const items = (url: string): FetchItem[] =>
    [...files].map(([p, b]) => ({ url: `${url}${p}`, digest: sha('sha256', b), size: b.length, name: p.slice(6) }));

  it('downloads every item in parallel, verified, into content-addressed cache paths', async () => {
    const srv = await serve((req, res) => res.end(files.get(req.url ?? '')));
    try {
      const events: ProgressEvent[] = [];
      const res = await fetchAll(items(srv.url), { http, cache, concurrency: 4, onProgress: (e) => events.push(e) });
      assert.equal(res.length, files.size);
      for (const r of res) {
        const b = files.get(new URL(r.item.url).pathname)!;
        assert.equal(r.cached, false);
        assert.equal(r.path, join(cache.dir, 'by-sha256', sha('sha256', b).slice(0, 2), sha('sha256', b)));
        assert.ok(readFileSync(r.path).equals(b));
      }
      const last = events.filter((e) => e.type === 'download').at(-1);
      const total = [...files.values()].reduce((s, b) => s + b.length, 0);
      assert.deepEqual(last && { ...last, rate: 0 }, { type: 'download', bytes: total, totalBytes: total, items: 12, totalItems: 12, cachedItems: 0, rate: 0 });
      assert.equal(events.filter((e) => e.type === 'item').length, 12);
      assert.deepEqual(readdirSync(join(cache.dir, 'tmp')), []);
    } finally {
      await srv.close();
    }
  });

  it('reports items already in the cache as cached without downloading them', async () => {
    const srv = await serve((req, res) => res.end(files.get(req.url ?? '')));
    try {
      await fetchAll(items(srv.url), { http, cache });
      const before = srv.requests.length;
      const res = await fetchAll(items(srv.url), { http, cache });
      assert.equal(srv.requests.length, before);
      assert.ok(res.every((r) => r.cached));
    } finally {
      await srv.close();
    }
  });

  it('re-fetches once after a digest mismatch and succeeds when the second copy is good', async () => {
    const good = Buffer.from('the real bytes');
    const srv = await serve((_q, res, n) => res.end(n === 1 ? Buffer.from('the fake bytes') : good));
    try {
      const [r] = await fetchAll([{ url: `${srv.url}/a.deb`, digest: sha('sha256', good), size: good.length, name: 'a.deb' }], { http, cache });
      assert.ok(readFileSync(r.path).equals(good));
      assert.equal(srv.hits.get('/a.deb'), 2);
    } finally {
      await srv.close();
    }
  });

  it('fails with a VerifyError naming the file and both digests when the mismatch persists', async () => {
    const good = Buffer.from('the real bytes');
    const bad = Buffer.from(good);
    bad[3] ^= 0xff;
    const srv = await serve((_q, res) => res.end(bad));
    try {
      await assert.rejects(fetchAll([{ url: `${srv.url}/a.deb`, digest: sha('sha256', good), name: 'a.deb' }], { http, cache }), (e: unknown) => {
        assert.ok(e instanceof VerifyError);
        assert.match(e.message, /^cannot verify `a\.deb`/);
        assert.ok(e.message.includes(`expected ${sha('sha256', good)}, got ${sha('sha256', bad)}`));
        return true;
      });
      assert.equal(srv.hits.get('/a.deb'), 2);
      assert.equal(existsSync(cache.pathFor({ algo: 'sha256', hex: sha('sha256', good) })), false);
      assert.deepEqual(readdirSync(join(cache.dir, 'tmp')), []);
    } finally {
      await srv.close();
    }
  });

  it('checks the size as well as the digest', async () => {
    const b = Buffer.from('twelve bytes');
    const srv = await serve((_q, res) => res.end(b));
    try {
      await assert.rejects(fetchAll([{ url: `${srv.url}/s`, digest: sha('sha256', b), size: 13, name: 's' }], { http, cache }), /size mismatch \(expected 13 bytes, got 12\)/);
    } finally {
      await srv.close();
    }
  });

  it('verifies sha512 and sha1 digests of RPM repositories', async () => {
    const b = Buffer.from('rpm payload');
    const srv = await serve((_q, res) => res.end(b));
    try {
      const res = await fetchAll(
        [
          { url: `${srv.url}/one.rpm`, digest: { algo: 'sha512', hex: sha('sha512', b) }, name: 'one.rpm' },
          { url: `${srv.url}/two.rpm`, digest: { algo: 'sha', hex: sha('sha1', b) }, name: 'two.rpm' },
        ],
        { http, cache },
      );
      assert.match(res[0].path, /by-sha512/);
      assert.match(res[1].path, /by-sha1/);
    } finally {
      await srv.close();
    }
  });

  it('stops all downloads on the first failure and reports that failure', async () => {
    const srv = await serve((req, res) => {
      if (req.url === '/pool/p3.deb') res.writeHead(404).end();
      else setTimeout(() => res.end(files.get(req.url ?? '')), 30);
    });
    try {
      await assert.rejects(fetchAll(items(srv.url), { http, cache, concurrency: 2 }), /p3\.deb`: HTTP 404/);
    } finally {
      await srv.close();
    }
  });
});
