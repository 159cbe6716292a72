/**
 * A small bzip2 decoder in TypeScript, for old RPM repositories whose
 * metadata is `primary.xml.bz2`. Written here rather than taken from npm:
 * the pure-JS packages are unmaintained and untyped, and binding libbz2
 * would mean a native build for a format only legacy repositories use.
 * It follows the reference decoder (bzip2 1.0.8 `decompress.c`): Huffman
 * groups → MTF/RLE2 → inverse BWT → RLE1, with block and stream CRCs
 * checked, and concatenated streams (pbzip2) supported. It buffers the
 * compressed input (metadata files are a few MB); output is produced per
 * block (≤ 900 kB).
 */
import { Transform, type TransformCallback } from 'node:stream';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

class BitReader {
  #buf: Uint8Array;
  #i = 0;
  #acc = 0;
  #count = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  /** Reads n ≤ 24 bits, most significant first. */
  bits(n: number): number {
    while (this.#count < n) {
      if (this.#i >= this.#buf.length) throw new Error('bzip2 data is truncated');
      this.#acc = ((this.#acc << 8) | this.#buf[this.#i++]) >>> 0;
      this.#count += 8;
    }
    this.#count -= n;
    const v = (this.#acc >>> this.#count) & ((1 << n) - 1);
    this.#acc &= (1 << this.#count) - 1;
    return v;
  }

  bits32(): number {
    return ((this.bits(16) << 16) | this.bits(16)) >>> 0;
  }

  /** Drops the bits left in the current byte (streams end byte-aligned). */
  align(): void {
    this.#count = 0;
    this.#acc = 0;
  }

  get remaining(): number {
    return this.#buf.length - this.#i;
  }
}

/**
 * Decodes a complete bzip2 file (one or more concatenated streams), one
 * Buffer per block.
 *
 * @example
 * const out = Buffer.concat([...bunzip2(readFileSync('primary.xml.bz2'))]);
 */
export function* bunzip2(input: Uint8Array): Generator<Buffer> {
  const br = new BitReader(input);
  let streams = 0;
  while (br.remaining > 0) {
    if (br.bits(8) !== 0x42 || br.bits(8) !== 0x5a || br.bits(8) !== 0x68) {
      if (streams > 0) return; // trailing garbage after a complete stream, as bzip2 tolerates
      throw new Error('not bzip2 data');
    }
    const level = br.bits(8) - 0x30;
    if (level < 1 || level > 9) throw new Error('bad bzip2 block size');
    const tt = new Uint32Array(level * 100_000);
    let combined = 0;
    for (;;) {
      const hi = br.bits(24);
      const lo = br.bits(24);
      if (hi === 0x314159 && lo === 0x265359) {
        const expected = br.bits32();
        const block = decodeBlock(br, tt);
        const crc = blockCrc(block);
        if (crc !== expected) throw new Error('bzip2 block CRC mismatch');
        combined = (((combined << 1) | (combined >>> 31)) ^ crc) >>> 0;
        yield block;
      } else if (hi === 0x177245 && lo === 0x385090) {
        if (br.bits32() !== combined) throw new Error('bzip2 stream CRC mismatch');
        br.align();
        streams++;
        break;
      } else {
        throw new Error('bad bzip2 block header');
      }
    }
  }
}

function blockCrc(b: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ b[i]) & 0xff]) >>> 0;
  return ~c >>> 0;
}

function decodeBlock(br: BitReader, tt: Uint32Array): Buffer {
  if (br.bits(1)) throw new Error('randomised bzip2 blocks are not supported');
  const origPtr = br.bits(24);

  // Symbol map: which byte values occur.
  const seqToUnseq: number[] = [];
  const used16 = br.bits(16);
  for (let i = 0; i < 16; i++) {
    if (used16 & (0x8000 >> i)) {
      const bits = br.bits(16);
      for (let j = 0; j < 16; j++) if (bits & (0x8000 >> j)) seqToUnseq.push(i * 16 + j);
    }
  }
  if (seqToUnseq.length === 0) throw new Error('bad bzip2 symbol map');
  const alphaSize = seqToUnseq.length + 2;

  const nGroups = br.bits(3);
  const nSelectors = br.bits(15);
  if (nGroups < 2 || nGroups > 6 || nSelectors < 1) throw new Error('bad bzip2 Huffman groups');
  const mtfGroups = [0, 1, 2, 3, 4, 5].slice(0, nGroups);
  const selectors = new Uint8Array(nSelectors);
  for (let i = 0; i < nSelectors; i++) {
    let j = 0;
    while (br.bits(1)) if (++j >= nGroups) throw new Error('bad bzip2 selector');
    const v = mtfGroups[j];
    mtfGroups.splice(j, 1);
    mtfGroups.unshift(v);
    selectors[i] = v;
  }

  // Code lengths, then canonical decode tables (limit/base/perm as in bzip2).
  const tables: Array<{ limit: Int32Array; base: Int32Array; perm: Int32Array; minLen: number }> = [];
  for (let t = 0; t < nGroups; t++) {
    const len = new Uint8Array(alphaSize);
    let curr = br.bits(5);
    for (let i = 0; i < alphaSize; i++) {
      for (;;) {
        if (curr < 1 || curr > 20) throw new Error('bad bzip2 code length');
        if (!br.bits(1)) break;
        curr += br.bits(1) ? -1 : 1;
      }
      len[i] = curr;
    }
    let minLen = 32;
    let maxLen = 0;
    for (const l of len) {
      if (l < minLen) minLen = l;
      if (l > maxLen) maxLen = l;
    }
    const perm = new Int32Array(alphaSize);
    let pp = 0;
    for (let i = minLen; i <= maxLen; i++) for (let j = 0; j < alphaSize; j++) if (len[j] === i) perm[pp++] = j;
    const base = new Int32Array(23);
    const limit = new Int32Array(23).fill(-1);
    for (let j = 0; j < alphaSize; j++) base[len[j] + 1]++;
    for (let i = 1; i < 23; i++) base[i] += base[i - 1];
    let vec = 0;
    for (let i = minLen; i <= maxLen; i++) {
      vec += base[i + 1] - base[i];
      limit[i] = vec - 1;
      vec <<= 1;
    }
    for (let i = minLen + 1; i <= maxLen; i++) base[i] = ((limit[i - 1] + 1) << 1) - base[i];
    limit[maxLen + 1] = 0x7fffffff; // sentinel: never read past maxLen
    tables.push({ limit, base, perm, minLen });
  }

  // Huffman symbols → RLE2 runs and MTF → tt (low byte = value).
  const EOB = alphaSize - 1;
  const mtf = new Uint8Array(256);
  for (let i = 0; i < 256; i++) mtf[i] = i;
  const counts = new Int32Array(256);
  let nblock = 0;
  let group = -1;
  let groupLeft = 0;
  let run = 0;
  let runWeight = 1;
  let table = tables[0];
  for (;;) {
    if (groupLeft === 0) {
      if (++group >= nSelectors) throw new Error('bzip2 selectors exhausted');
      table = tables[selectors[group]];
      groupLeft = 50;
    }
    groupLeft--;
    let zn = table.minLen;
    let zvec = br.bits(zn);
    while (zvec > table.limit[zn]) {
      if (++zn > 20) throw new Error('bad bzip2 Huffman code');
      zvec = (zvec << 1) | br.bits(1);
    }
    const sym = table.perm[zvec - table.base[zn]];
    if (sym <= 1) {
      run += (sym + 1) * runWeight;
      runWeight <<= 1;
      if (run > tt.length) throw new Error('bzip2 run too long');
      continue;
    }
    if (run > 0) {
      const uc = seqToUnseq[mtf[0]];
      if (nblock + run > tt.length) throw new Error('bzip2 block too long');
      counts[uc] += run;
      tt.fill(uc, nblock, nblock + run);
      nblock += run;
      run = 0;
      runWeight = 1;
    }
    if (sym === EOB) break;
    const idx = sym - 1;
    const v = mtf[idx];
    mtf.copyWithin(1, 0, idx);
    mtf[0] = v;
    const uc = seqToUnseq[v];
    if (nblock >= tt.length) throw new Error('bzip2 block too long');
    counts[uc]++;
    tt[nblock++] = uc;
  }
  if (origPtr >= nblock) throw new Error('bad bzip2 origin pointer');

  // Inverse BWT.
  const cftab = new Int32Array(257);
  for (let i = 0; i < 256; i++) cftab[i + 1] = cftab[i] + counts[i];
  for (let i = 0; i < nblock; i++) {
    const uc = tt[i] & 0xff;
    tt[cftab[uc]++] |= i << 8;
  }

  // Walk the permutation while undoing RLE1 (4 equal bytes + a repeat count).
  let out: Buffer = Buffer.allocUnsafe(nblock + (nblock >> 2) + 256);
  let o = 0;
  let pos = tt[origPtr] >>> 8;
  let last = -1;
  let same = 0;
  for (let k = 0; k < nblock; k++) {
    const e = tt[pos];
    const ch = e & 0xff;
    pos = e >>> 8;
    if (same === 4) {
      if (o + ch > out.length) out = grow(out, o + ch);
      out.fill(last, o, o + ch);
      o += ch;
      same = 0;
      last = -1;
      continue;
    }
    if (ch === last) same++;
    else {
      last = ch;
      same = 1;
    }
    if (o >= out.length) out = grow(out, o + 1);
    out[o++] = ch;
  }
  return out.subarray(0, o);
}

function grow(b: Buffer, need: number): Buffer {
  const n = Buffer.allocUnsafe(Math.max(need, b.length * 2));
  b.copy(n);
  return n;
}

/**
 * A Transform that decodes bzip2 (buffers the input; see module comment).
 *
 * @example
 * await pipeline(createReadStream('primary.xml.bz2'), createBunzip2(), parser);
 */
export function createBunzip2(): Transform {
  const chunks: Buffer[] = [];
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      chunks.push(chunk);
      cb();
    },
    flush(cb: TransformCallback) {
      try {
        for (const block of bunzip2(Buffer.concat(chunks))) this.push(block);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}
