import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createRenderer, formatBytes, formatDownload, type ProgressEvent } from '../../bootstrap/progress.js';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

const run: ProgressEvent[] = [
  { type: 'phase', phase: 'index', status: 'start' },
  { type: 'phase', phase: 'index', status: 'done' },
  { type: 'phase', phase: 'download', status: 'start' },
  { type: 'download', bytes: 1536, totalBytes: 3 << 20, items: 1, totalItems: 4, cachedItems: 1, rate: 2 << 20 },
  { type: 'log', level: 'warn', message: 'mirror is slow' },
  { type: 'phase', phase: 'download', status: 'done', detail: '4 files' },
];

describe('bootstrap/progress', () => {
  it('prints one JSON event per line in --json mode, and the error last', async () => {
    const out = sink();
    const r = await createRenderer('json', { out: out.stream });
    for (const e of run) r.emit(e);
    await r.close(Object.assign(new Error('cannot download `x`: HTTP 404'), { code: 'network' }));
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.slice(0, run.length), run);
    assert.deepEqual(lines.at(-1), { type: 'error', message: 'cannot download `x`: HTTP 404', code: 'network' });
  });

  it('prints nothing but error messages in --quiet mode', async () => {
    const err = sink();
    const r = await createRenderer('quiet', { err: err.stream });
    for (const e of run) r.emit(e);
    r.emit({ type: 'log', level: 'error', message: 'it broke' });
    await r.close();
    assert.equal(err.text(), 'nsbox: it broke\n');
  });

  it('runs the task list to the end off a terminal, skipping phases that never started, and prints warnings after it', async () => {
    const err = sink();
    const r = await createRenderer('tasks', { tty: false, err: err.stream });
    for (const e of run) r.emit(e);
    await r.close();
    assert.equal(err.text(), 'nsbox: warning: mirror is slow\n');
  });

  it('closes the task list when the run fails midway', async () => {
    const r = await createRenderer('tasks', { tty: false, err: sink().stream });
    r.emit({ type: 'phase', phase: 'unpack', status: 'start' });
    await r.close(new Error('boom'));
  });

  it('formats bytes and the download line', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatDownload(run[3] as Extract<ProgressEvent, { type: 'download' }>), '1.5 KiB / 3.0 MiB, 1/4 files (1 cached), 2.0 MiB/s');
  });
});
