/**
 * bench/boot: boots the same Debian tree with nsbox and with systemd-nspawn
 * in one run, each on a fresh pseudo terminal, and times start → login prompt
 * and SIGTERM (clean poweroff) → exit. Prints medians, ratios, and the nsbox
 * supervisor's resident memory while the container runs.
 * Usage: node --import tsx bench/boot.ts [RUNS] [SUITE]
 */
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import tty from 'node:tty';
import { native } from '../runtime/native.js';
import { bootTree, removeTree } from '../test/helpers/debian-trees.js';
import { NSBOX } from '../test/helpers/cli.js';
import { nspawnArgv, removeNspawnCgroups } from './nspawn.js';

const runs = Number(process.argv[2] ?? 5);
const suite = process.argv[3] ?? 'bookworm';
const tree = await bootTree(suite);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

interface Result { prompt: number; poweroff: number; rssKiB?: number }

async function bootOnce(cmd: string, args: string[]): Promise<Result> {
  const pty = native().openpty();
  const { closeSync } = await import('node:fs');
  const slave = pty.slaveFd;
  const master = new tty.ReadStream(pty.fd);
  native().setWinsize(pty.fd, 40, 120);
  let screen = '';
  master.on('data', (d: Buffer) => { screen += d.toString(); });
  master.on('error', () => {});
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: [slave, slave, slave], detached: true });
  closeSync(slave);
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  while (!/login:\s*$/m.test(screen)) {
    if (performance.now() - t0 > 120_000) throw new Error(`no login prompt from ${cmd}:\n${screen.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const prompt = performance.now() - t0;
  let rssKiB: number | undefined;
  if (cmd === process.execPath) {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    rssKiB = m ? Number(m[1]) : undefined;
  }
  const t1 = performance.now();
  process.kill(cmd === process.execPath ? child.pid! : child.pid!, 'SIGTERM');
  await exited;
  const poweroff = performance.now() - t1;
  master.destroy();
  return { prompt, poweroff, rssKiB };
}

const nspawnAvailable = existsSync('/usr/bin/systemd-nspawn');
const results: Record<string, Result[]> = { nsbox: [], 'systemd-nspawn': [] };
for (let i = 0; i < runs; i++) {
  results.nsbox.push(await bootOnce(process.execPath, [NSBOX, 'run', '-b', '-q', '-D', tree, '-M', 'bench-boot']));
  if (nspawnAvailable) {
    const [cmd, ...args] = nspawnArgv(['-b', '-D', tree, '-M', 'bench-boot']);
    results['systemd-nspawn'].push(await bootOnce(cmd, args));
  }
}
const n = results.nsbox, s = results['systemd-nspawn'];
console.log(`boot ${suite} to the login prompt and power off, median of ${runs} runs (ms)`);
console.log(`  ${'tool'.padEnd(16)} ${'to login prompt'.padStart(16)} ${'poweroff'.padStart(10)}`);
for (const [name, rs] of Object.entries(results)) {
  if (!rs.length) continue;
  console.log(`  ${name.padEnd(16)} ${median(rs.map((r) => r.prompt)).toFixed(0).padStart(16)} ${median(rs.map((r) => r.poweroff)).toFixed(0).padStart(10)}`);
}
if (s.length) {
  console.log(`  nsbox / systemd-nspawn, login prompt: ${(median(n.map((r) => r.prompt)) / median(s.map((r) => r.prompt))).toFixed(2)}x (target <= 1.00x)`);
  console.log(`  nsbox / systemd-nspawn, poweroff:     ${(median(n.map((r) => r.poweroff)) / median(s.map((r) => r.poweroff))).toFixed(2)}x`);
}
console.log(`  nsbox supervisor resident memory while running: ${(median(n.map((r) => r.rssKiB ?? 0)) / 1024).toFixed(1)} MiB (target <= 60 MiB)`);
removeTree(tree);
removeNspawnCgroups();
process.exit(0);
