import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { formatParagraph, parseParagraph, parseParagraphs, streamParagraphs } from '../../../bootstrap/apt/deb822.js';

const SAMPLE = `Package: hello
Version: 2.10-3
Description: example package based on GNU hello
 The GNU hello program produces a familiar, friendly greeting.
 .
 Seriously, that is all.
Depends: libc6 (>= 2.34)

Package: zz-unicode
Maintainer: Jörg Ü <j@example.org>
Version: 1


`;

async function collect(chunks: (string | Uint8Array)[], fields?: Set<string>) {
  const out = [];
  for await (const p of streamParagraphs(Readable.from(chunks), { fields })) out.push(p);
  return out;
}

describe('apt/deb822', () => {
  it('parses paragraphs with continuation lines', () => {
    const ps = parseParagraphs(SAMPLE);
    assert.equal(ps.length, 2);
    assert.equal(ps[0].Package, 'hello');
    assert.equal(ps[0].Description, 'example package based on GNU hello\nThe GNU hello program produces a familiar, friendly greeting.\n.\nSeriously, that is all.');
    assert.equal(ps[0].Depends, 'libc6 (>= 2.34)');
    assert.equal(ps[1].Maintainer, 'Jörg Ü <j@example.org>');
  });

  it('keeps a multi-line field whose first line is empty (Release SHA256)', () => {
    const p = parseParagraph('Suite: stable\nSHA256:\n abc 12 main/x\n def 34 main/y\n');
    assert.equal(p.SHA256, 'abc 12 main/x\ndef 34 main/y');
  });

  it('skips comments, CRLF endings and whitespace-only separator lines', () => {
    const ps = parseParagraphs('# a comment\r\nTypes: deb\r\nURIs: http://example.org/debian\r\n \t\r\nTypes: deb-src\r\n');
    assert.deepEqual(ps, [{ Types: 'deb', URIs: 'http://example.org/debian' }, { Types: 'deb-src' }]);
  });

  it('keeps only the requested fields', () => {
    const ps = parseParagraphs(SAMPLE, { fields: new Set(['Package', 'Depends']) });
    assert.deepEqual(ps, [{ Package: 'hello', Depends: 'libc6 (>= 2.34)' }, { Package: 'zz-unicode' }]);
  });

  it('streams the same result whatever the chunk boundaries, also inside UTF-8 sequences', async () => {
    const whole = parseParagraphs(SAMPLE);
    const bytes = Buffer.from(SAMPLE);
    for (const size of [1, 2, 3, 7, 64, bytes.length]) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      assert.deepEqual(await collect(chunks), whole, `chunk size ${size}`);
    }
    assert.deepEqual(await collect([SAMPLE.slice(0, 50), SAMPLE.slice(50)]), whole);
  });

  it('formats a paragraph back to deb822', () => {
    const p = { Package: 'x', Description: 'short\nlong line\n\nmore' };
    assert.equal(formatParagraph(p), 'Package: x\nDescription: short\n long line\n .\n more\n');
    assert.equal(parseParagraph(formatParagraph({ Types: 'deb', Suites: 'trixie trixie-updates' })).Suites, 'trixie trixie-updates');
  });
});
