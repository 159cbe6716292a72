/**
 * bench/bootstrap-debian: a Debian minbase tree built by `nsbox bootstrap`,
 * mmdebstrap and debootstrap (Debian's packages), in one run, against the
 * same mirror (the host's apt configuration, or --mirror URL), into the
 * same file system.
 *
 * - nsbox cold: an empty cache directory of its own (indexes and packages
 *   downloaded); nsbox warm: the same command again with that cache kept
 *   (downloads nothing; reuses the cached essential stage); and warm with
 *   --no-stage-cache (downloads nothing, dpkg installs everything again).
 * - mmdebstrap gets the same suites nsbox uses by default (release,
 *   -updates, -security); it keeps no cache between runs, so it is cold.
 * - debootstrap can only use the release suite; it is cold too.
 *
 * Prints wall time, peak memory (GNU time's %M: the largest resident set of
 * any one process of the run; a summed process tree double-counts the
 * runtime's vfork child), CPU time, and the ratios. Targets: nsbox cold <= 0.5 x
 * mmdebstrap, nsbox warm <= 0.3 x mmdebstrap cold. Trees are removed only
 * at the end: removing a tree just before the next build slows that build
 * down on ext4 (inode allocation skips recently freed inodes).
 *
 * Usage (as root): node --import tsx bench/bootstrap-debian.ts [--release bookworm] [--mirror URL] [--runs N] [--only nsbox]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NSBOX } from '../test/helpers/cli.js';
import { chooseMirrors } from '../recipes/debian.js';

const arg = (name: string, def?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const release = arg('release', 'bookworm')!;
const mirror = chooseMirrors({ mirror: arg('mirror') }).mirror;
const runs = Number(arg('runs', '1'));
const only = arg('only');
if (!mirror) throw new Error('no mirror: the host has no apt sources; pass --mirror URL');
// The security archive nsbox tries first, so both sides fetch the same suites.
const security = chooseMirrors({ mirror: arg('mirror') }).security[0];
if (!security) throw new Error(`no security archive known for ${mirror}: configure one in the host's apt sources`);
const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'nsbox-bench-debian-'));
chmodSync(work, 0o755);

interface Figure { ms: number; peak: number; cpu: number }

/** Runs a command under GNU time (peak RSS %M, CPU %U+%S) and measures its wall time. */
function measure(cmd: string, args: string[]): Promise<Figure> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'nsbox-bench=%M %U %S', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${stderr.slice(-3000)}`));
      const m = /nsbox-bench=(\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
      resolve({ ms, peak: Number(m?.[1] ?? 0) * 1024, cpu: Number(m?.[2] ?? 0) + Number(m?.[3] ?? 0) });
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
    record('nsbox warm, no stage cache', await measure(process.execPath, [...nsbox('nsbox-warm-nostage'), '--no-stage-cache']));
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
  return fs && { ms: median(fs.map((f) => f.ms)), peak: median(fs.map((f) => f.peak)), cpu: median(fs.map((f) => f.cpu)) };
};
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
console.log(`\nDebian ${release} minbase, ${runs} run(s), median; mirror from ${arg('mirror') ? '--mirror' : "the host's apt configuration"}; load average before: ${loadBefore}\n`);
console.log(`${'tool'.padEnd(28)} ${'wall'.padStart(8)} ${'CPU'.padStart(8)} ${'peak RSS'.padStart(9)}`);
for (const name of results.keys()) {
  const f = fig(name)!;
  console.log(`${name.padEnd(28)} ${`${(f.ms / 1000).toFixed(1)} s`.padStart(8)} ${`${f.cpu.toFixed(1)} s`.padStart(8)} ${mib(f.peak).padStart(9)}`);
}
const mm = fig('mmdebstrap');
const deb = fig('debootstrap');
console.log('');
for (const [name, target] of [['nsbox cold', 0.5], ['nsbox warm', 0.3], ['nsbox warm, no stage cache', undefined]] as const) {
  const f = fig(name);
  if (!f) continue;
  if (mm) console.log(`${`${name} / mmdebstrap (cold)`.padEnd(44)} = ${(f.ms / mm.ms).toFixed(2)}${target ? `  (target <= ${target.toFixed(2)})` : ''}   memory ${(f.peak / mm.peak).toFixed(2)}`);
  if (deb) console.log(`${`${name} / debootstrap`.padEnd(44)} = ${(f.ms / deb.ms).toFixed(2)}   memory ${(f.peak / deb.peak).toFixed(2)}`);
}
if (!process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
