import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { compareVersions, parseVersion, satisfies } from '../../../bootstrap/apt/version.js';

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** Text of every Packages list apt keeps on the host (lz4/xz/gz through apt-helper). */
function hostPackageLists(): string[] {
  const dir = '/var/lib/apt/lists';
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir).filter((f) => /_Packages(\.\w+)?$/.test(f));
  return files.map((f) => {
    const path = `${dir}/${f}`;
    if (f.endsWith('_Packages')) return readFileSync(path, 'utf8');
    return execFileSync('/usr/lib/apt/apt-helper', ['cat-file', path], { maxBuffer: 1 << 30 }).toString('utf8');
  });
}

/** dpkg's verdict on each pair, from one shell process. */
function dpkgCompare(pairs: [string, string][]): number[] {
  const script = 'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done';
  const out = execFileSync('sh', ['-c', script], { input: pairs.map(([a, b]) => `${a} ${b}`).join('\n') + '\n', maxBuffer: 1 << 26 });
  return out.toString().trim().split('\n').map(Number);
}

describe('apt/version', () => {
  it('splits epoch, upstream and revision', () => {
    assert.deepEqual(parseVersion('1:2.36.1-8+deb12u1'), { epoch: 1, upstream: '2.36.1', revision: '8+deb12u1' });
    assert.deepEqual(parseVersion('2.0'), { epoch: 0, upstream: '2.0', revision: '' });
    assert.deepEqual(parseVersion('1.2-3-4'), { epoch: 0, upstream: '1.2-3', revision: '4' });
  });

  it('orders by the rules of deb-version(7)', () => {
    const ordered = ['1.0~~', '1.0~~a', '1.0~', '1.0', '1.0-1', '1.0a', '1.0+', '1.0.1', '1.1', '1:0.1', '2:0~'];
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        assert.equal(sign(compareVersions(ordered[i], ordered[j])), sign(i - j), `${ordered[i]} vs ${ordered[j]}`);
      }
    }
    assert.equal(compareVersions('1.001', '1.1'), 0);
    assert.equal(compareVersions('0:1.0', '1.0'), 0);
    assert.equal(compareVersions('1.0', '1.0-0'), 0); // an empty revision is 0
  });

  it('evaluates relation operators', () => {
    assert.ok(satisfies('2.36-9', '>=', '2.36'));
    assert.ok(!satisfies('1.0', '<<', '1.0'));
    assert.ok(satisfies('1.0', '<=', '1.0'));
    assert.ok(satisfies('1.0+b1', '>>', '1.0'));
    assert.ok(satisfies('1:1.0', '=', '1:1.0'));
  });

  it('agrees with dpkg --compare-versions on real versions from the host package lists', function () {
    const lists = hostPackageLists();
    if (!lists.length || !existsSync('/usr/bin/dpkg')) this.skip();
    const byPkg = new Map<string, Set<string>>();
    for (const text of lists) {
      let pkg = '';
      for (const line of text.split('\n')) {
        if (line.startsWith('Package: ')) pkg = line.slice(9);
        else if (line.startsWith('Version: ')) {
          let s = byPkg.get(pkg);
          if (!s) byPkg.set(pkg, (s = new Set()));
          s.add(line.slice(9));
        }
      }
    }
    // dpkg costs a process per comparison, so check a total order instead of all pairs: sort a
    // sample with compareVersions and let dpkg confirm each neighbour; as dpkg's order is
    // transitive, that confirms every pair of the sample.
    const all = [...new Set([...byPkg.values()].flatMap((s) => [...s]))].sort();
    const step = Math.max(1, Math.floor(all.length / 600));
    const sample = all.filter((_, i) => i % step === 0).sort(compareVersions);
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < sample.length; i++) pairs.push([sample[i], sample[i + 1]]);
    // The same package in several lists (stable vs updates vs security): comparisons apt really makes.
    for (const s of [...byPkg.values()].filter((s) => s.size > 1).slice(0, 150)) {
      const v = [...s];
      pairs.push([v[0], v[1]]);
    }
    const expected = dpkgCompare(pairs);
    const wrong = pairs.filter(([a, b], i) => sign(compareVersions(a, b)) !== expected[i]);
    assert.deepEqual(wrong, [], `${wrong.length} of ${pairs.length} pairs disagree`);
    assert.ok(sample.length > 500, `only ${sample.length} versions`);
  });
});
