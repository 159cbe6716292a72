/**
 * Extracts .deb files' data.tar with nsbox (readAr → decompress → extractTar)
 * and with `dpkg-deb -x`, side by side, and prints both times and the ratio.
 *
 *   npx tsx bench/extract-deb.ts PKG.deb [PKG.deb …]
 *
 * Leaves the two trees in a temp directory (printed) for `diff -r`.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readAr } from '../bootstrap/archive/ar.js';
import { extractTar } from '../bootstrap/archive/tar.js';
import { TreeWriter } from '../bootstrap/archive/writer.js';
import { compressionFromName, decompressStream } from '../bootstrap/decompress.js';

const debs = process.argv.slice(2);
if (debs.length === 0) {
  console.error('usage: bench/extract-deb.ts PKG.deb…');
  process.exit(2);
}
const base = await mkdtemp(join(tmpdir(), 'nsbox-bench-'));
const ours = join(base, 'nsbox');
const theirs = join(base, 'dpkg');

async function nsbox(): Promise<number> {
  await rm(ours, { recursive: true, force: true });
  const t = performance.now();
  const writer = new TreeWriter(ours);
  let files = 0;
  for (const deb of debs) {
    for await (const m of readAr(createReadStream(deb))) {
      if (!m.name.startsWith('data.tar')) continue;
      const tar = await decompressStream(Readable.from(m.data), compressionFromName(m.name));
      files += (await extractTar(tar, ours, { writer })).length;
    }
  }
  await writer.finish();
  void files;
  return performance.now() - t;
}

async function dpkg(): Promise<number> {
  await rm(theirs, { recursive: true, force: true });
  const t = performance.now();
  for (const deb of debs) execFileSync('dpkg-deb', ['-x', deb, theirs]);
  return performance.now() - t;
}

const runs = 3;
const a: number[] = [];
const b: number[] = [];
for (let i = 0; i < runs; i++) {
  a.push(await nsbox());
  b.push(await dpkg());
}
const best = (x: number[]) => Math.min(...x);
console.log(`nsbox     ${best(a).toFixed(0)} ms (best of ${runs})`);
console.log(`dpkg-deb  ${best(b).toFixed(0)} ms (best of ${runs})`);
console.log(`ratio     ${(best(a) / best(b)).toFixed(2)}× dpkg-deb's time`);
console.log(`trees     ${ours} ${theirs}`);
