import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AbortedError, NetworkError } from '../../errors.js';
import { HttpClient } from '../../bootstrap/http.js';
import { sendWithRange, serve, tempDir } from './helpers.js';

describe('bootstrap/http', () => {
  const body = Buffer.alloc(3 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7919) & 0xff;
  let tmp: ReturnType<typeof tempDir>;
  let http: HttpClient;
  beforeEach(() => {
    tmp = tempDir();
    http = new HttpClient({ retryDelayMs: 5, connections: 2 });
  });
  afterEach(async () => {
    await http.close();
    tmp.cleanup();
  });

  it('gets a small file as text', async () => {
    const srv = await serve((_q, res) => res.end('hello\n'));
    try {
      assert.equal(await http.getText(`${srv.url}/x`), 'hello\n');
    } finally {
      await srv.close();
    }
  });

  it('retries a 503 and then succeeds', async () => {
    const srv = await serve((_q, res, n) => {
      if (n < 3) res.writeHead(503).end();
      else res.end('ok');
    });
    const retries: number[] = [];
    const h = new HttpClient({ retryDelayMs: 1, onRetry: (i) => retries.push(i.attempt) });
    try {
      assert.equal(await h.getText(`${srv.url}/f`), 'ok');
      assert.equal(srv.hits.get('/f'), 3);
      assert.deepEqual(retries, [2, 3]);
    } finally {
      await h.close();
      await srv.close();
    }
  });

  it('fails at once on a 404 with the URL and status in the message', async () => {
    const srv = await serve((_q, res) => res.writeHead(404).end());
    try {
      await assert.rejects(http.getText(`${srv.url}/missing`), (e: unknown) => {
        assert.ok(e instanceof NetworkError);
        assert.equal(e.message, `cannot download \`${srv.url}/missing\`: HTTP 404`);
        assert.ok(e.hint);
        return true;
      });
      assert.equal(srv.hits.get('/missing'), 1);
    } finally {
      await srv.close();
    }
  });

  it('gives up after the configured tries with a NetworkError naming the URL', async () => {
    const srv = await serve((_q, res) => res.writeHead(500).end());
    const h = new HttpClient({ retryDelayMs: 1, tries: 3 });
    try {
      await assert.rejects(h.getText(`${srv.url}/bad`), /cannot download `.*\/bad`: HTTP 500 \(after 3 tries\)/);
      assert.equal(srv.hits.get('/bad'), 3);
    } finally {
      await h.close();
      await srv.close();
    }
  });

  it('reports a refused connection as a NetworkError after retries', async () => {
    const srv = await serve((_q, res) => res.end());
    const url = `${srv.url}/x`;
    await srv.close();
    const h = new HttpClient({ retryDelayMs: 1, tries: 2 });
    try {
      await assert.rejects(h.getText(url), (e: unknown) => e instanceof NetworkError && /ECONNREFUSED/.test(e.message) && /after 2 tries/.test(e.message));
    } finally {
      await h.close();
    }
  });

  it('resumes a download with Range after the connection drops midway', async () => {
    const srv = await serve((req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-length': body.length, etag: '"v1"' });
        res.write(body.subarray(0, 1 << 20), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      sendWithRange(req, res, body, { etag: '"v1"' });
    });
    try {
      const dest = join(tmp.dir, 'out');
      const h = createHash('sha256');
      let resets = 0;
      const { bytes } = await http.download(`${srv.url}/big`, dest, { onChunk: (c) => h.update(c), onReset: () => resets++ });
      assert.equal(bytes, body.length);
      assert.ok(readFileSync(dest).equals(body));
      assert.equal(h.digest('hex'), createHash('sha256').update(body).digest('hex'));
      assert.equal(resets, 0);
      const second = srv.requests[1];
      assert.match(second.headers.range ?? '', /^bytes=\d+-$/);
      assert.equal(second.headers['if-range'], '"v1"');
    } finally {
      await srv.close();
    }
  });

  it('restarts from byte 0 when the server ignores Range', async () => {
    const srv = await serve((_q, res, n) => {
      res.writeHead(200, { 'content-length': body.length });
      if (n === 1) res.write(body.subarray(0, 1 << 20), () => setTimeout(() => res.socket?.destroy(), 20));
      else res.end(body);
    });
    try {
      const dest = join(tmp.dir, 'out');
      let resets = 0;
      await http.download(`${srv.url}/big`, dest, { onReset: () => resets++ });
      assert.equal(resets, 1);
      assert.ok(readFileSync(dest).equals(body));
    } finally {
      await srv.close();
    }
  });

  it('reads file:// URLs and names a missing file', async () => {
    const p = join(tmp.dir, 'local');
    writeFileSync(p, 'local data');
    assert.equal(await http.getText(pathToFileURL(p).href), 'local data');
    const dest = join(tmp.dir, 'copy');
    assert.deepEqual(await http.download(pathToFileURL(p).href, dest), { bytes: 10 });
    const missing = pathToFileURL(join(tmp.dir, 'nope')).href;
    await assert.rejects(http.getText(missing), new RegExp(`cannot download \`${missing}\`: no such file`));
  });

  it('stops with an AbortedError when the signal fires', async () => {
    const srv = await serve(() => {
      /* never answers */
    });
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(http.getText(`${srv.url}/hang`, { signal: ac.signal }), AbortedError);
    } finally {
      await srv.close();
    }
  });

  it('keeps to the connection cap per origin', async () => {
    let open = 0;
    let peak = 0;
    const srv = await serve((_q, res) => {
      open++;
      peak = Math.max(peak, open);
      setTimeout(() => {
        open--;
        res.end('x');
      }, 20);
    });
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => http.getText(`${srv.url}/${i}`)));
      assert.ok(peak <= 2, `peak ${peak}`);
    } finally {
      await srv.close();
    }
  });

  it('follows redirects (relative and absolute) and gives up on a loop with one NetworkError', async () => {
    const srv = await serve((q, res) => {
      if (q.url === '/a') res.writeHead(301, { location: '/b' }).end('moved');
      else if (q.url === '/b') res.writeHead(302, { location: `http://127.0.0.1:${(q.socket.localPort)}/c` }).end();
      else if (q.url === '/c') res.end('here');
      else res.writeHead(307, { location: q.url }).end();
    });
    const h = new HttpClient({ retryDelayMs: 1, tries: 2 });
    try {
      assert.equal(await h.getText(`${srv.url}/a`), 'here');
      await assert.rejects(h.getText(`${srv.url}/loop`), (e: Error) => e instanceof NetworkError && /loop/.test(e.message) && /redirects/.test(e.message));
    } finally {
      await h.close();
      await srv.close();
    }
  });

  it('fails a response whose headers do not come, or whose body stalls, in time', async () => {
    const srv = await serve((q, res) => {
      if (q.url === '/slow-headers') return; // never answers
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10)); // and then nothing more
    });
    // each limit short only where it is under test: a busy machine must not hit the other one
    const noHeaders = new HttpClient({ retryDelayMs: 1, tries: 1, headersTimeoutMs: 100 });
    const stalled = new HttpClient({ retryDelayMs: 1, tries: 1, bodyTimeoutMs: 100 });
    try {
      await assert.rejects(noHeaders.getText(`${srv.url}/slow-headers`), (e: Error) => e instanceof NetworkError && /headers/.test(e.message));
      await assert.rejects(stalled.download(`${srv.url}/stall`, join(tmp.dir, 'stall')), (e: Error) => e instanceof NetworkError && /stalled/.test(e.message));
    } finally {
      await noHeaders.close();
      await stalled.close();
      await srv.close();
    }
  });
});
