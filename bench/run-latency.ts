/**
 * bench/run-latency: `nsbox run -D TREE /bin/true` side by side with the
 * floor any Node CLI pays (`node -e 0`) and with systemd-nspawn, in one run.
 * Prints medians and ratios. Usage: node --import tsx bench/run-latency.ts [RUNS]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { makeBusyboxTree } from '../test/helpers/tree.js';
import { NSBOX } from '../test/helpers/cli.js';
import { nspawnArgv, removeNspawnCgroups } from './nspawn.js';

const runs = Number(process.argv[2] ?? 30);
const tree = makeBusyboxTree({ name: 'nsbox-bench-' });

function time(cmd: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const cases: [string, string, string[]][] = [
  ['node -e 0 (floor)', process.execPath, ['-e', '0']],
  ['nsbox run /bin/true', process.execPath, [NSBOX, 'run', '-D', tree, '/bin/true']],
];
if (existsSync('/usr/bin/systemd-nspawn')) {
  const [cmd, ...args] = nspawnArgv(['--console=pipe', '-D', tree, '/bin/true']);
  cases.push(['systemd-nspawn /bin/true', cmd, args]);
}
const results = new Map<string, number[]>();
for (const [name] of cases) results.set(name, []);
for (let i = 0; i < 3; i++) for (const [, cmd, args] of cases) time(cmd, args); // warm caches
for (let i = 0; i < runs; i++) for (const [name, cmd, args] of cases) results.get(name)!.push(time(cmd, args));

const floor = median(results.get('node -e 0 (floor)')!);
const nsbox = median(results.get('nsbox run /bin/true')!);
console.log(`run latency, median of ${runs} runs (ms)`);
for (const [name, xs] of results) console.log(`  ${name.padEnd(28)} ${median(xs).toFixed(1).padStart(7)}`);
console.log(`  nsbox / node floor            ${(nsbox / floor).toFixed(2)}x  (target <= 1.20x)`);
if (results.has('systemd-nspawn /bin/true')) {
  console.log(`  nsbox / systemd-nspawn        ${(nsbox / median(results.get('systemd-nspawn /bin/true')!)).toFixed(2)}x`);
}
rmSync(tree, { recursive: true, force: true });
removeNspawnCgroups();
