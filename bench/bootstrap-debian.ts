/**
 * bench/bootstrap-debian: a Debian minbase tree built by `nsbox bootstrap`,
 * mmdebstrap and debootstrap (Debian's packages), in one run, against the
 * same mirror (the host's apt configuration, or --mirror URL), into the
 * same file system.
 *
 * - nsbox cold: an empty cache directory of its own (indexes and packages
 *   downloaded); nsbox warm: the same command again with that cache kept
 *   (downloads nothing; reuses the cached essential stage).
 * - mmdebstrap gets the same suites nsbox uses by default (release,
 *   -updates, -security); it keeps no cache between runs, so it is cold.
 * - debootstrap can only use the release suite; it is cold too.
 *
 * Prints wall time, peak memory (the largest sum of the resident sizes of
 * the whole process tree, sampled every 20 ms; and the largest single
 * process, as GNU time's %M), and the ratios. Targets: nsbox cold <= 0.5 x
 * mmdebstrap, nsbox warm <= 0.3 x mmdebstrap cold. Trees are removed only
 * at the end: removing a tree just before the next build slows that build
 * down on ext4 (inode allocation skips recently freed inodes).
 *
 * Usage (as root): node --import tsx bench/bootstrap-debian.ts [--release bookworm] [--mirror URL] [--runs N] [--only nsbox]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NSBOX } from '../test/helpers/cli.js';
import { hostMirrors, securityMirrorFor } from '../recipes/debian.js';

const arg = (name: string, def?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const release = arg('release', 'bookworm')!;
const mirror = (arg('mirror') ?? hostMirrors().mirror)?.replace(/\/+$/, '');
const runs = Number(arg('runs', '1'));
const only = arg('only');
if (!mirror) throw new Error('no mirror: the host has no apt sources; pass --mirror URL');
const security = arg('mirror') ? securityMirrorFor(mirror) : securityMirrorFor(mirror, hostMirrors().security);
const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'nsbox-bench-debian-'));
chmodSync(work, 0o755);

/** Resident set size (bytes) of a process and all its descendants. */
function treeRss(pid: number): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      (children.get(Number(fields[1])) ?? children.set(Number(fields[1]), []).get(Number(fields[1]))!).push(Number(name));
      rss.set(Number(name), Number(fields[21]) * 4096);
    } catch {
      /* exited */
    }
  }
  let sum = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    sum += rss.get(p) ?? 0;
    stack.push(...(children.get(p) ?? []));
  }
  return sum;
}

interface Figure { ms: number; peakTree: number; peakOne: number }

/** Runs a command under GNU time (for %M) and samples the process tree's memory. */
function measure(cmd: string, args: string[]): Promise<Figure> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'nsbox-bench-maxrss=%M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let peakTree = 0;
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setInterval(() => (peakTree = Math.max(peakTree, treeRss(child.pid!))), 20);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${stderr.slice(-3000)}`));
      const one = Number(/nsbox-bench-maxrss=(\d+)/.exec(stderr)?.[1] ?? 0) * 1024;
      resolve({ ms, peakTree, peakOne: one });
    });
  });
}

const results = new Map<string, Figure[]>();
const record = (name: string, f: Figure) => (results.get(name) ?? results.set(name, []).get(name)!).push(f);
const want = (tool: string) => !only || only.split(',').includes(tool);

for (let i = 0; i < runs; i++) {
  const cache = join(work, `cache-${i}`);
  if (want('nsbox')) {
    const nsbox = (name: string) => ['--no-warnings', NSBOX, 'bootstrap', 'debian', join(work, `${name}-${i}`), '--release', release, '--mirror', mirror, '--cache-dir', cache, '--quiet'];
    record('nsbox cold', await measure(process.execPath, nsbox('nsbox-cold')));
    record('nsbox warm', await measure(process.execPath, nsbox('nsbox-warm')));
  }
  if (want('mmdebstrap') && existsSync('/usr/bin/mmdebstrap')) {
    record('mmdebstrap', await measure('/usr/bin/mmdebstrap', [
      '--quiet', '--variant=minbase', release, join(work, `mmdebstrap-${i}`),
      `deb ${mirror} ${release} main`, `deb ${mirror} ${release}-updates main`, `deb ${security} ${release}-security main`,
    ]));
  }
  if (want('debootstrap') && existsSync('/usr/sbin/debootstrap')) {
    record('debootstrap', await measure('/usr/sbin/debootstrap', ['--variant=minbase', release, join(work, `debootstrap-${i}`), mirror]));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fig = (name: string) => {
  const fs = results.get(name);
  return fs && { ms: median(fs.map((f) => f.ms)), peakTree: median(fs.map((f) => f.peakTree)), peakOne: median(fs.map((f) => f.peakOne)) };
};
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
console.log(`\nDebian ${release} minbase, ${runs} run(s), median; mirror from ${arg('mirror') ? '--mirror' : "the host's apt configuration"}; trees in ${work}\n`);
console.log(`${'tool'.padEnd(12)} ${'wall'.padStart(9)} ${'peak (tree)'.padStart(12)} ${'peak (1 proc)'.padStart(14)}`);
for (const name of results.keys()) {
  const f = fig(name)!;
  console.log(`${name.padEnd(12)} ${`${(f.ms / 1000).toFixed(1)} s`.padStart(9)} ${mib(f.peakTree).padStart(12)} ${mib(f.peakOne).padStart(14)}`);
}
const mm = fig('mmdebstrap');
const cold = fig('nsbox cold');
const warm = fig('nsbox warm');
const deb = fig('debootstrap');
console.log('');
if (mm && cold) console.log(`nsbox cold / mmdebstrap      = ${(cold.ms / mm.ms).toFixed(2)}  (target <= 0.50)   memory ${(cold.peakTree / mm.peakTree).toFixed(2)}`);
if (mm && warm) console.log(`nsbox warm / mmdebstrap cold = ${(warm.ms / mm.ms).toFixed(2)}  (target <= 0.30)   memory ${(warm.peakTree / mm.peakTree).toFixed(2)}`);
if (deb && cold) console.log(`nsbox cold / debootstrap     = ${(cold.ms / deb.ms).toFixed(2)}`);
if (deb && warm) console.log(`nsbox warm / debootstrap     = ${(warm.ms / deb.ms).toFixed(2)}`);
if (!process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
