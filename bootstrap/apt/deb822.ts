/**
 * deb822 control paragraphs: the format of Packages, Release, dpkg's status
 * file and apt's `.sources` files (Debian Policy §5.1).
 *
 * A paragraph is a plain object `{ Field: value }`. A value keeps its first
 * line as written (trimmed) and each continuation line on its own line with
 * the leading whitespace removed, so multi-line fields (Description,
 * SHA256 in Release) stay splittable by `\n`. Lines starting with `#` are
 * comments (allowed in `.sources`, never present in archive indexes).
 *
 * Parsing is tuned for big indexes (main/binary-amd64/Packages is ~60 MB):
 * it scans with `indexOf` and, with `fields`, skips values it is not asked
 * for (Description is half of a Packages file).
 */

/** One control paragraph: field name (as written) → value. */
export type Paragraph = Record<string, string>;

/** Options for the parsers. */
export interface ParseOptions {
  /** Keep only these fields (exact, as written in the file). Default: all. */
  fields?: ReadonlySet<string>;
}

/**
 * Parses every paragraph of a complete text.
 *
 * @example
 * parseParagraphs('Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\n')
 * // → [{ Package: 'a', Version: '1' }, { Package: 'b', Version: '2' }]
 */
export function parseParagraphs(text: string, opts: ParseOptions = {}): Paragraph[] {
  const out: Paragraph[] = [];
  parseInto(text, 0, text.length, opts.fields, out);
  return out;
}

/**
 * Parses the first paragraph of a text (a Release file, one status entry).
 * Returns an empty object for an empty text.
 *
 * @example
 * parseParagraph('Suite: stable\nArchitectures: amd64 arm64\n').Suite // 'stable'
 */
export function parseParagraph(text: string, opts: ParseOptions = {}): Paragraph {
  const out: Paragraph[] = [];
  parseInto(text, 0, text.length, opts.fields, out, 1);
  return out[0] ?? {};
}

/**
 * Streams paragraphs from chunks of bytes or text (a decompressor's output,
 * a file stream). Chunks may split anywhere, also inside a UTF-8 sequence.
 *
 * @example
 * for await (const p of streamParagraphs(fs.createReadStream('Packages'), { fields: new Set(['Package', 'Depends']) }))
 *   console.log(p.Package);
 */
export async function* streamParagraphs(
  source: AsyncIterable<Uint8Array | string>,
  opts: ParseOptions = {},
): AsyncGenerator<Paragraph> {
  let rest: Buffer = Buffer.alloc(0);
  const batch: Paragraph[] = [];
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const buf = rest.length ? Buffer.concat([rest, bytes]) : bytes;
    // Cut after the last blank line: everything before it is complete paragraphs.
    const i = buf.lastIndexOf(BLANK);
    if (i < 0) {
      rest = buf === bytes ? Buffer.from(bytes) : buf; // the source may reuse its chunk
      continue;
    }
    parseBytes(buf, 0, i + 2, opts.fields, batch);
    rest = Buffer.from(buf.subarray(i + 2));
    for (const p of batch) yield p;
    batch.length = 0;
  }
  parseBytes(rest, 0, rest.length, opts.fields, batch);
  for (const p of batch) yield p;
}

const BLANK = Buffer.from('\n\n');

/** Wanted field names by length, as bytes, per field set. */
const wantedCache = new WeakMap<ReadonlySet<string>, Map<number, Array<[Buffer, string]>>>();

/** The field name at buf[start, end) when it is in `fields` (compared as bytes), else undefined. */
function wantedName(fields: ReadonlySet<string>, buf: Buffer, start: number, end: number): string | undefined {
  let byLength = wantedCache.get(fields);
  if (!byLength) {
    byLength = new Map();
    for (const f of fields) {
      const b = Buffer.from(f, 'latin1');
      const list = byLength.get(b.length) ?? [];
      list.push([b, f]);
      byLength.set(b.length, list);
    }
    wantedCache.set(fields, byLength);
  }
  const candidates = byLength.get(end - start);
  if (!candidates) return undefined;
  // a byte loop: names are short, and Buffer#compare's native call costs more than comparing them
  next: for (const [b, f] of candidates) {
    for (let k = 0; k < b.length; k++) if (b[k] !== buf[start + k]) continue next;
    return f;
  }
  return undefined;
}

/**
 * Parses whole paragraphs from bytes. Works on the bytes directly so that
 * skipped fields (Description) are never decoded; kept values are UTF-8.
 * Same rules as `parseInto`.
 */
function parseBytes(buf: Buffer, start: number, end: number, fields: ReadonlySet<string> | undefined, out: Paragraph[]): void {
  let para: Paragraph | null = null;
  let field = '';
  let pos = start;
  while (pos < end) {
    let eol = buf.indexOf(10, pos);
    if (eol < 0 || eol > end) eol = end;
    let lineEnd = eol;
    if (lineEnd > pos && buf[lineEnd - 1] === 13) lineEnd--;
    const c = buf[pos];
    if (c === 32 || c === 9) {
      let s = pos + 1;
      while (s < lineEnd && (buf[s] === 32 || buf[s] === 9)) s++;
      if (s === lineEnd) {
        if (para) out.push(para);
        para = null;
      } else if (para && field) {
        const prev = para[field];
        const line = buf.toString('utf8', s, lineEnd);
        para[field] = prev === '' ? line : prev + '\n' + line;
      }
    } else if (lineEnd === pos) {
      if (para) out.push(para);
      para = null;
    } else if (c !== 35) {
      const colon = buf.indexOf(58, pos);
      if (colon < 0 || colon > lineEnd) {
        field = '';
      } else {
        // A field name is decoded only when it is wanted: an index line is mostly fields nobody reads
        // (two million names in a full Packages file, and the garbage they make).
        const name = fields ? wantedName(fields, buf, pos, colon) : buf.toString('latin1', pos, colon);
        if (!para) para = {};
        if (name === undefined) {
          field = '';
        } else {
          let s = colon + 1;
          while (s < lineEnd && (buf[s] === 32 || buf[s] === 9)) s++;
          let e = lineEnd;
          while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
          para[name] = buf.toString('utf8', s, e);
          field = name;
        }
      }
    }
    pos = eol + 1;
  }
  if (para) out.push(para);
}

/** Parses text[start, end) into `out`; stops after `limit` paragraphs. */
function parseInto(
  text: string,
  start: number,
  end: number,
  fields: ReadonlySet<string> | undefined,
  out: Paragraph[],
  limit = Infinity,
): void {
  let para: Paragraph | null = null;
  let field = ''; // current field name, '' when skipped
  let pos = start;
  while (pos < end) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0 || eol > end) eol = end;
    let lineEnd = eol;
    if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--; // CRLF
    const c = text.charCodeAt(pos);
    if (c === 32 || c === 9) {
      // Continuation line, or a whitespace-only line which counts as blank.
      let s = pos + 1;
      while (s < lineEnd && (text.charCodeAt(s) === 32 || text.charCodeAt(s) === 9)) s++;
      if (s === lineEnd) {
        if (para) {
          out.push(para);
          para = null;
          if (out.length >= limit) return;
        }
      } else if (para && field) {
        const prev = para[field];
        const line = text.slice(s, lineEnd);
        para[field] = prev === '' ? line : prev + '\n' + line;
      }
    } else if (lineEnd === pos) {
      if (para) {
        out.push(para);
        para = null;
        if (out.length >= limit) return;
      }
    } else if (c !== 35 /* # */) {
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon > lineEnd) {
        field = ''; // malformed line: ignore it, like apt does for garbage
      } else {
        const name = text.slice(pos, colon);
        if (fields && !fields.has(name)) {
          field = '';
          if (!para) para = {};
        } else {
          let s = colon + 1;
          while (s < lineEnd && (text.charCodeAt(s) === 32 || text.charCodeAt(s) === 9)) s++;
          let e = lineEnd;
          while (e > s && (text.charCodeAt(e - 1) === 32 || text.charCodeAt(e - 1) === 9)) e--;
          if (!para) para = {};
          para[name] = text.slice(s, e);
          field = name;
        }
      }
    }
    pos = eol + 1;
  }
  if (para) out.push(para);
}

/**
 * Renders a paragraph back to deb822 text (for dpkg's status/available
 * files and apt `.sources`). Multi-line values are indented by one space;
 * empty continuation lines become " .".
 *
 * @example
 * formatParagraph({ Types: 'deb', Suites: 'trixie' }) // 'Types: deb\nSuites: trixie\n'
 */
export function formatParagraph(p: Paragraph): string {
  let s = '';
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue;
    const lines = v.split('\n');
    s += `${k}:${lines[0] === '' ? '' : ' ' + lines[0]}\n`;
    for (let i = 1; i < lines.length; i++) s += ` ${lines[i] === '' ? '.' : lines[i]}\n`;
  }
  return s;
}
