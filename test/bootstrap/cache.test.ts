import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { Cache } from '../../bootstrap/cache.js';
import { HttpClient } from '../../bootstrap/http.js';
import { serve, tempDir } from './helpers.js';

describe('bootstrap/cache', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('fetches index files with a conditional request and serves 304 from the cache', async () => {
    const srv = await serve((req, res) => {
      if (req.headers['if-none-match'] === '"r1"') return res.writeHead(304).end();
      res.writeHead(200, { etag: '"r1"', 'last-modified': 'Sat, 01 Nov 2025 00:00:00 GMT' }).end('Origin: Debian\n');
    });
    const http = new HttpClient();
    const cache = new Cache({ dir: tmp.dir });
    try {
      const a = await cache.fetchIndex(http, `${srv.url}/dists/x/InRelease`);
      assert.equal(a.notModified, false);
      const b = await cache.fetchIndex(http, `${srv.url}/dists/x/InRelease`);
      assert.equal(b.notModified, true);
      assert.equal(b.data.toString(), 'Origin: Debian\n');
      assert.equal(srv.requests[1].headers['if-modified-since'], 'Sat, 01 Nov 2025 00:00:00 GMT');
    } finally {
      await http.close();
      await srv.close();
    }
  });

  it('sweeps temp files left by killed runs', async () => {
    const cache = new Cache({ dir: tmp.dir });
    const t = await cache.tempPath('x');
    writeFileSync(t, 'partial');
    assert.equal(await cache.sweepTemp(0), 1);
    assert.equal(existsSync(t), false);
  });
});
