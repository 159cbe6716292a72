/**
 * bench/activation: latency of the first connection to an activated
 * container (connect → sshd banner, the container booting in between) and of
 * a warm connection (container already up). Socket-activated sshd in a
 * Debian bookworm tree, `nsbox activate --idle-stop 1` between cold runs.
 * Usage: node --import tsx bench/activation.ts [RUNS]
 */
import { connect, createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { bootTree, removeTree } from '../test/helpers/debian-trees.js';
import { NSBOX } from '../test/helpers/cli.js';

const runs = Number(process.argv[2] ?? 5);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const port: number = await new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });

const tree = await bootTree('bookworm', 'nsbox-test', ['openssh-server']);
mkdirSync(join(tree, 'etc/systemd/system/ssh.socket.d'), { recursive: true });
writeFileSync(join(tree, 'etc/systemd/system/ssh.socket.d/listen.conf'), `[Socket]\nListenStream=\nListenStream=127.0.0.1:${port}\n`);
execFileSync('chroot', [tree, 'sh', '-c', 'systemctl disable ssh.service; systemctl enable ssh.socket'], { stdio: 'ignore' });

/** ms from connect() to the first bytes of the SSH banner. */
function banner(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = connect(port, '127.0.0.1');
    s.setTimeout(120_000, () => { s.destroy(); reject(new Error('timeout')); });
    s.once('data', (d) => { if (!d.toString().startsWith('SSH-')) reject(new Error(`not a banner: ${d}`)); resolve(performance.now() - t0); s.destroy(); });
    s.on('error', reject);
  });
}
const running = () => existsSync('/run/nsbox/machines/bench-act.json') && JSON.parse(readFileSync('/run/nsbox/machines/bench-act.json', 'utf8')).leader > 0;

const act = spawn(process.execPath, [NSBOX, 'activate', '-q', '--listen', `127.0.0.1:${port}`, '--idle-stop', '1', '-D', tree, '-M', 'bench-act'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1000));
const cold: number[] = [], warm: number[] = [];
for (let i = 0; i < runs; i++) {
  while (running()) await new Promise((r) => setTimeout(r, 100)); // powered off by --idle-stop
  cold.push(await banner());
  warm.push(await banner());
}
act.kill('SIGTERM');
await new Promise((r) => act.on('exit', r));
console.log(`activation latency, connect → sshd banner, median of ${runs} runs (ms)`);
console.log(`  first connection (boots the container)  ${median(cold).toFixed(0).padStart(7)}`);
console.log(`  warm connection (container running)     ${median(warm).toFixed(0).padStart(7)}`);
removeTree(tree);

process.exit(0);
