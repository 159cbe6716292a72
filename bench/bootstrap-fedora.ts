/**
 * bench/bootstrap-fedora: `nsbox bootstrap fedora` side by side with Debian's
 * `dnf --installroot`, in one run, against the same synthetic Fedora
 * repository served on loopback (test/bootstrap/rpm/repo-builder.ts), the
 * same package set (the minimal variant plus nsbox-testfiles), both
 * checking signatures with the test key. Each run starts from an empty
 * target and an empty cache (cold), then once more with the cache kept
 * (warm). Prints median wall time, CPU time (user + system, the processes
 * each tool waited for included; steadier than wall time on a busy
 * machine), peak memory (the largest resident set of any one process) and
 * the ratios. Needs GNU time (/usr/bin/time).
 *
 * Usage: node --import tsx bench/bootstrap-fedora.ts [RUNS]   (as root; target nsbox <= 0.5 x dnf)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NSBOX } from '../test/helpers/cli.js';
import { buildFedoraTestRepo } from '../test/bootstrap/rpm/repo-builder.js';

type Sample = { ms: number; cpu: number; peak: number };
const runs = Number(process.argv[2] ?? 3);
const RELEASE = 40;
const INSTALL = ['bash', 'coreutils', 'rpm', 'dnf', 'fedora-release', 'nsbox-testfiles'];
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-fedora-'));
const repo = await buildFedoraTestRepo(join(work, 'mirror'), { release: RELEASE });

/**
 * Runs a command asynchronously (the repository is served from this
 * process) under GNU time: wall time, CPU time (user + system, children it
 * waited for included) and peak memory (the largest resident set of any
 * process of the run, from wait4's rusage).
 */
function measure(cmd: string, args: string[]): Promise<Sample> {
  const out = join(work, 'time.out');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-o', out, '-f', '%U %S %M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return reject(new Error(`${cmd} ${args.slice(0, 4).join(' ')} … failed (${code}): ${stderr.slice(-2000)}`));
      const [user, sys, maxKb] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      resolve({ ms, cpu: (user! + sys!) * 1000, peak: maxKb! * 1024 });
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
const med = (xs: Sample[], k: keyof Sample) => median(xs.map((x) => x[k]));
console.log(`bootstrap fedora ${RELEASE} (minimal + nsbox-testfiles, loopback repository), median of ${runs} runs`);
console.log(`  ${''.padEnd(12)} ${'wall'.padStart(9)} ${'cpu'.padStart(9)} ${'peak memory'.padStart(12)}`);
for (const [name, xs] of Object.entries(results)) {
  console.log(`  ${name.padEnd(12)} ${`${(med(xs, 'ms') / 1000).toFixed(2)} s`.padStart(9)} ${`${(med(xs, 'cpu') / 1000).toFixed(2)} s`.padStart(9)} ${mib(med(xs, 'peak')).padStart(12)}`);
}
for (const mode of ['cold', 'warm']) {
  const a = results[`nsbox ${mode}`]!, b = results[`dnf ${mode}`]!;
  const r = (k: keyof Sample) => (med(a, k) / med(b, k)).toFixed(2);
  console.log(`  nsbox / dnf (${mode})  wall ${r('ms')}x  cpu ${r('cpu')}x  memory ${r('peak')}x  (target wall <= 0.50x)`);
}
