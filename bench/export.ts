/**
 * Exports one Debian minbase tree (built by nsbox and cached, as the tests
 * build it) side by side with the peers, and prints wall time, peak memory
 * and output size of each, and the ratios:
 *
 *   tar.zst      nsbox export TREE out.tar.zst   vs  tar --zstd (GNU tar with mmdebstrap's options, then zstd -3)
 *   oci          nsbox export TREE oci:DIR        vs  umoci init + new + insert TREE / (one gzip layer)
 *   oci-archive  nsbox export TREE oci-archive:F  vs  umoci as above, then skopeo copy oci:DIR oci-archive:F
 *
 *   node --import tsx bench/export.ts [RUNS]
 *
 * Each figure is the best of RUNS (default 3), runs alternating. The CLI's
 * start-up is in nsbox's figures, as the peers' are in theirs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NSBOX } from '../test/helpers/cli.js';
import { Containers } from '../test/helpers/containers.js';
import { minbaseTree } from '../test/helpers/debian-trees.js';

const runs = Number(process.argv[2] ?? 3);
const tree = await minbaseTree('bookworm');
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-export-'));
const engines = new Containers();
const env = { ...process.env, SOURCE_DATE_EPOCH: '1704067200' };

interface Run { ms: number; rssMiB: number }

/** Runs commands one after the other under GNU time; wall time and the largest peak RSS among them. */
function timed(commands: string[][], opts: { skopeo?: boolean } = {}): Run {
  let rss = 0;
  const t = performance.now();
  for (const c of commands) {
    const argv = opts.skopeo && c[0] === 'skopeo' ? ['unshare', '-m', 'sh', '-c', 'mount --bind /var/lib /var/lib && mount -o remount,bind,ro /var/lib && exec "$@"', 'sh', 'skopeo', '--policy', join(engines.dir, 'policy.json'), ...c.slice(1)] : c;
    const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { env: opts.skopeo ? { ...env, ...engines.env } : env, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${c.join(' ')} failed: ${r.stderr}`);
    rss = Math.max(rss, Number(r.stderr.trim().split('\n').at(-1)) / 1024);
  }
  return { ms: performance.now() - t, rssMiB: rss };
}

function size(path: string): number {
  if (!existsSync(path)) return 0;
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  return readdirSync(path).reduce((s, n) => s + size(join(path, n)), 0);
}

const out = (n: string) => join(work, n);
const clean = () => { for (const n of readdirSync(work)) rmSync(out(n), { recursive: true, force: true }); };
const umoci = (dir: string) => [['umoci', 'init', '--layout', dir], ['umoci', 'new', '--image', `${dir}:latest`], ['umoci', 'insert', '--image', `${dir}:latest`, tree, '/']];

const cases: Array<{ name: string; peer: string; ours: () => string[][]; theirs: () => string[][]; oursOut: string; theirsOut: string; skopeo?: boolean }> = [
  {
    name: 'tar.zst', peer: 'tar --zstd',
    ours: () => [[process.execPath, NSBOX, 'export', '--quiet', tree, out('nsbox.tar.zst')]],
    theirs: () => [['tar', '-C', tree, '--sort=name', '--mtime=@1704067200', '--clamp-mtime', '--numeric-owner', '--one-file-system', '--format=pax',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '--xattrs', '--zstd', '-cf', out('gnu.tar.zst'), '.']],
    oursOut: out('nsbox.tar.zst'), theirsOut: out('gnu.tar.zst'),
  },
  {
    name: 'oci', peer: 'umoci insert',
    ours: () => [[process.execPath, NSBOX, 'export', '--quiet', tree, `oci:${out('nsbox-oci')}:latest`]],
    theirs: () => umoci(out('umoci-oci')),
    oursOut: out('nsbox-oci'), theirsOut: out('umoci-oci'),
  },
  {
    name: 'oci-archive', peer: 'umoci + skopeo copy', skopeo: true,
    ours: () => [[process.execPath, NSBOX, 'export', '--quiet', tree, `oci-archive:${out('nsbox.oci.tar')}:latest`]],
    theirs: () => [...umoci(out('umoci-tmp')), ['skopeo', 'copy', '-q', `oci:${out('umoci-tmp')}:latest`, `oci-archive:${out('umoci.oci.tar')}:latest`]],
    oursOut: out('nsbox.oci.tar'), theirsOut: out('umoci.oci.tar'),
  },
];

try {
  console.log(`tree: Debian bookworm minbase, ${(size(tree) / 1048576).toFixed(0)} MiB in regular files; best of ${runs} runs each\n`);
  const rows: string[][] = [['format', 'nsbox ms', 'nsbox RSS', 'nsbox size', 'peer', 'peer ms', 'peer RSS', 'peer size', 'time ratio']];
  for (const c of cases) {
    const a: Run[] = [];
    const b: Run[] = [];
    let sizes = [0, 0];
    for (let i = 0; i < runs; i++) {
      clean();
      a.push(timed(c.ours()));
      b.push(timed(c.theirs(), { skopeo: c.skopeo }));
      sizes = [size(c.oursOut), size(c.theirsOut)];
    }
    const best = (x: Run[]) => x.reduce((m, r) => (r.ms < m.ms ? r : m));
    const [x, y] = [best(a), best(b)];
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    rows.push([c.name, x.ms.toFixed(0), `${x.rssMiB.toFixed(0)} MiB`, mib(sizes[0]), c.peer, y.ms.toFixed(0), `${y.rssMiB.toFixed(0)} MiB`, mib(sizes[1]), `${(x.ms / y.ms).toFixed(2)}×`]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(w[i])).join('  '));
  console.log('\n(time ratio: nsbox\'s time over the peer\'s; below 1 is faster)');
} finally {
  clean();
  rmSync(work, { recursive: true, force: true });
  rmSync(tree, { recursive: true, force: true });
  await engines.cleanup();
}
