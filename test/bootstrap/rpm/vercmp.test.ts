import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rpmvercmp, evrcmp, parseEvr, formatEvr } from '../../../bootstrap/rpm/vercmp.js';

function hasRpm(): boolean {
  try { execFileSync('rpm', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** Deterministic pseudo-random versions built from the characters rpm treats specially. */
function makePairs(n: number): [string, string][] {
  let seed = 12345;
  const rnd = (k: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % k; };
  const atoms = ['0', '1', '2', '9', '10', '01', '001', '100', 'a', 'b', 'rc', 'alpha', 'Z', '.', '.', '_', '+', '~', '^', '~rc', '^git', 'fc40', 'el9'];
  const gen = () => { let s = ''; const len = 1 + rnd(6); for (let i = 0; i < len; i++) s += atoms[rnd(atoms.length)]; return s; };
  const out: [string, string][] = [];
  for (let i = 0; i < n; i++) {
    const a = gen();
    // half the pairs are near-misses of each other, where ordering bugs hide
    const b = rnd(2) ? gen() : a + atoms[rnd(atoms.length)];
    out.push(rnd(2) ? [a, b] : [b, a]);
  }
  return out;
}

describe('rpm version comparison', () => {
  it('orders the classic cases the way rpm documents them', () => {
    const cases: [string, string, number][] = [
      ['1.0', '1.0', 0], ['1.0', '2.0', -1], ['2.0.1', '2.0', 1], ['2.0.1a', '2.0.1', 1],
      ['5.5p1', '5.5p2', -1], ['5.6p1', '5.5p2', 1], ['10xyz', '10.1xyz', -1], ['xyz10', 'xyz10.1', -1],
      ['1.0~rc1', '1.0', -1], ['1.0~rc1', '1.0~rc2', -1], ['1.0~rc1~git', '1.0~rc1', -1],
      ['1.0^', '1.0', 1], ['1.0^git1', '1.0', 1], ['1.0^git1', '1.01', -1], ['1.0^git1~pre', '1.0^git1', -1],
      ['a', '1', -1], ['1', 'a', 1], ['1.0', '1_0', 0], ['001', '1', 0], ['fc4', 'fc.4', 0],
    ];
    for (const [a, b, r] of cases) assert.equal(rpmvercmp(a, b), r, `${a} vs ${b}`);
  });

  it('compares epoch first, and ignores the release when a dependency gives none', () => {
    assert.equal(evrcmp(parseEvr('1:1.0-1'), parseEvr('9.0-1')), 1);
    assert.equal(evrcmp(parseEvr('1.0-5'), parseEvr('1.0')), 0);
    assert.equal(evrcmp(parseEvr('1.0-5'), parseEvr('1.0-10')), -1);
    assert.deepEqual(parseEvr('2:1.4-3.fc40'), { epoch: 2, version: '1.4', release: '3.fc40' });
    assert.equal(formatEvr(parseEvr('0:1.4-3')), '1.4-3');
  });

  it('agrees with rpm.vercmp on 3000 generated pairs', function () {
    if (!hasRpm()) this.skip();
    const pairs = makePairs(3000);
    const dir = mkdtempSync(join(tmpdir(), 'nsbox-vercmp-'));
    try {
      const lua = join(dir, 'cmp.lua');
      const q = (s: string) => JSON.stringify(s); // ASCII only: a JSON string is a Lua string
      writeFileSync(lua, pairs.map(([a, b]) => `print(rpm.vercmp(${q(a)}, ${q(b)}) .. " ")`).join('\n') + '\n');
      const out = execFileSync('rpm', ['--eval', `%{lua: dofile("${lua}")}`], { encoding: 'utf8', maxBuffer: 1 << 24 });
      const want = out.trim().split(/\s+/).map(Number);
      assert.equal(want.length, pairs.length);
      const bad = pairs.filter(([a, b], i) => rpmvercmp(a, b) !== want[i]).map(([a, b]) => `${a} vs ${b}`);
      assert.deepEqual(bad.slice(0, 10), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
