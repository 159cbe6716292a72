/**
 * bench/ephemeral-userns: nsbox side by side with systemd-nspawn, in one run:
 * `-x` start of a busybox command (and of the Debian tree, where nspawn
 * copies the tree on ext4), and boot to the login prompt with `-U` (each on
 * its own copy of the tree: nspawn may chown its copy). Prints medians and
 * ratios. Usage: node --import tsx bench/ephemeral-userns.ts [RUNS] [SUITE]
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, rmSync } from 'node:fs';
import tty from 'node:tty';
import { native } from '../runtime/native.js';
import { makeBusyboxTree } from '../test/helpers/tree.js';
import { bootTree, removeTree } from '../test/helpers/debian-trees.js';
import { NSBOX } from '../test/helpers/cli.js';
import { nspawnArgv, removeNspawnCgroups } from './nspawn.js';

const runs = Number(process.argv[2] ?? 10);
const suite = process.argv[3] ?? 'bookworm';
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const hasNspawn = existsSync('/usr/bin/systemd-nspawn');
const nspawn = (args: string[]) => { const [cmd, ...rest] = nspawnArgv(args); return [cmd, rest] as const; };

function time(cmd: string, args: readonly string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}

/** Start → login prompt on a fresh pty, then SIGTERM and wait for the exit. */
async function bootToLogin(cmd: string, args: readonly string[]): Promise<number> {
  const pty = native().openpty();
  const master = new tty.ReadStream(pty.fd);
  native().setWinsize(pty.fd, 40, 120);
  let screen = '';
  master.on('data', (d: Buffer) => { screen += d.toString(); });
  master.on('error', () => {});
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: [pty.slaveFd, pty.slaveFd, pty.slaveFd], detached: true });
  closeSync(pty.slaveFd);
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  while (!/login:\s*$/m.test(screen)) {
    if (performance.now() - t0 > 120_000) throw new Error(`no login prompt from ${cmd}:\n${screen.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = performance.now() - t0;
  process.kill(child.pid!, 'SIGTERM');
  await exited;
  master.destroy();
  return ms;
}

function row(label: string, n: number[], s: number[]): void {
  const mn = median(n), ms = s.length ? median(s) : NaN;
  console.log(`  ${label.padEnd(34)} ${mn.toFixed(1).padStart(9)} ${s.length ? ms.toFixed(1).padStart(15) : '            n/a'} ${s.length ? `${(mn / ms).toFixed(2)}x`.padStart(8) : ''}`);
}

console.log(`nsbox vs systemd-nspawn, median of ${runs} runs (ms)`);
console.log(`  ${'case'.padEnd(34)} ${'nsbox'.padStart(9)} ${'systemd-nspawn'.padStart(15)} ${'ratio'.padStart(8)}`);

// -x start of a busybox command
const busybox = makeBusyboxTree({ name: 'nsbox-bench-x-' });
const x = { n: [] as number[], s: [] as number[] };
for (let i = 0; i < runs + 2; i++) {
  const n = time(process.execPath, [NSBOX, 'run', '-x', '-q', '-D', busybox, '/bin/true']);
  const s = hasNspawn ? time(...nspawn(['-x', '--console=pipe', '-D', busybox, '/bin/true'])) : NaN;
  if (i >= 2) { x.n.push(n); if (hasNspawn) x.s.push(s); } // two warm-up rounds
}
row('-x busybox /bin/true', x.n, x.s);
rmSync(busybox, { recursive: true, force: true });

// -x of a whole Debian tree: nspawn copies it (ext4 has no snapshots), nsbox stacks a tmpfs
const debX = await bootTree(suite);
const dx = { n: [] as number[], s: [] as number[] };
for (let i = 0; i < Math.min(runs, 5); i++) {
  dx.n.push(time(process.execPath, [NSBOX, 'run', '-x', '-q', '-D', debX, '/bin/true']));
  if (hasNspawn) dx.s.push(time(...nspawn(['-x', '--console=pipe', '-D', debX, '/bin/true'])));
}
row(`-x ${suite} tree /bin/true`, dx.n, dx.s);
removeTree(debX);

// boot to the login prompt with -U, each tool on its own copy
const treeN = await bootTree(suite), treeS = await bootTree(suite);
const u = { n: [] as number[], s: [] as number[] };
const bootRuns = Math.min(runs, 5);
for (let i = 0; i < bootRuns + 1; i++) {
  const n = await bootToLogin(process.execPath, [NSBOX, 'run', '-U', '-b', '-q', '-D', treeN, '-M', 'bench-userns']);
  const s = hasNspawn ? await bootToLogin(...nspawn(['-U', '-b', '-D', treeS, '-M', 'bench-userns'])) : NaN;
  if (i >= 1) { u.n.push(n); if (hasNspawn) u.s.push(s); } // the first run may chown (nspawn) or pick the range
}
row(`-U -b ${suite} to the login prompt`, u.n, u.s);
removeTree(treeN);
removeTree(treeS);
removeNspawnCgroups();
process.exit(0);
