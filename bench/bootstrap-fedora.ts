/**
 * bench/bootstrap-fedora: `nsbox bootstrap fedora` side by side with Debian's
 * `dnf --installroot`, in one run, against the same synthetic Fedora
 * repository served on loopback (test/bootstrap/rpm/repo-builder.ts), the
 * same package set (the minimal variant plus nsbox-testfiles), both
 * checking signatures with the test key. Each run starts from an empty
 * target and an empty cache (cold), then once more with the cache kept
 * (warm). Prints median wall time, peak memory (the sum of the resident
 * sizes of the whole process tree, sampled every 10 ms) and the ratios.
 *
 * Usage: node --import tsx bench/bootstrap-fedora.ts [RUNS]   (as root; target nsbox <= 0.5 x dnf)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NSBOX } from '../test/helpers/cli.js';
import { buildFedoraTestRepo } from '../test/bootstrap/rpm/repo-builder.js';

const runs = Number(process.argv[2] ?? 3);
const RELEASE = 40;
const INSTALL = ['bash', 'coreutils', 'rpm', 'dnf', 'fedora-release', 'nsbox-testfiles'];
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-fedora-'));
const repo = await buildFedoraTestRepo(join(work, 'mirror'), { release: RELEASE });

/** Resident set size (bytes) of a process and all its descendants. */
function treeRss(pid: number): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(Number(name));
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

/** Runs a command asynchronously (the repository is served from this process) and measures it. */
function measure(cmd: string, args: string[]): Promise<{ ms: number; peak: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let peak = 0;
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setInterval(() => { peak = Math.max(peak, treeRss(child.pid!)); }, 10);
    child.on('close', (code) => {
      clearInterval(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} ${args.slice(0, 4).join(' ')} … failed (${code}): ${stderr.slice(-2000)}`));
      else resolve({ ms, peak });
    });
  });
}

const nsbox = (dir: string, cache: string) => measure(process.execPath, [
  NSBOX, 'bootstrap', 'fedora', dir, '--release', String(RELEASE), '--mirror', repo.baseUrl, '--keyring', repo.keyFile,
  '--include', 'nsbox-testfiles', '--cache-dir', cache, '--yes', '--quiet',
]);
const dnf = (dir: string, cache: string) => measure('dnf', [
  '-y', '-q', `--installroot=${dir}`, `--releasever=${RELEASE}`, '--setopt=reposdir=/nonexistent', '--setopt=install_weak_deps=False',
  `--setopt=cachedir=${cache}`, '--setopt=keepcache=True', '--setopt=gpgcheck=True', `--setopt=*.gpgkey=file://${repo.keyFile}`,
  `--repofrompath=fedora,${repo.releaseUrl}`, `--repofrompath=updates,${repo.updatesUrl}`, '--repo=fedora', '--repo=updates', 'install', ...INSTALL,
]);

type Sample = { ms: number; peak: number };
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const results: Record<string, Sample[]> = { 'nsbox cold': [], 'dnf cold': [], 'nsbox warm': [], 'dnf warm': [] };
let n = 0;
try {
  for (let i = 0; i < runs; i++) {
    for (const [tool, fn] of [['nsbox', nsbox], ['dnf', dnf]] as const) {
      const cache = join(work, `cache-${tool}-${i}`);
      const dirs = [join(work, `t${++n}`), join(work, `t${++n}`)];
      results[`${tool} cold`]!.push(await fn(dirs[0]!, cache));
      results[`${tool} warm`]!.push(await fn(dirs[1]!, cache));
      for (const d of [...dirs, cache]) rmSync(d, { recursive: true, force: true });
    }
  }
} finally {
  await repo.close();
  rmSync(work, { recursive: true, force: true });
}

const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
console.log(`bootstrap fedora ${RELEASE} (minimal + nsbox-testfiles, loopback repository), median of ${runs} runs`);
console.log(`  ${''.padEnd(12)} ${'wall'.padStart(9)} ${'peak memory'.padStart(12)}`);
for (const [name, xs] of Object.entries(results)) {
  console.log(`  ${name.padEnd(12)} ${`${(median(xs.map((x) => x.ms)) / 1000).toFixed(2)} s`.padStart(9)} ${mib(median(xs.map((x) => x.peak))).padStart(12)}`);
}
for (const mode of ['cold', 'warm']) {
  const a = results[`nsbox ${mode}`]!, b = results[`dnf ${mode}`]!;
  const t = median(a.map((x) => x.ms)) / median(b.map((x) => x.ms));
  const m = median(a.map((x) => x.peak)) / median(b.map((x) => x.peak));
  console.log(`  nsbox / dnf (${mode})  time ${t.toFixed(2)}x  memory ${m.toFixed(2)}x  (target time <= 0.50x)`);
}
