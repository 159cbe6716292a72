/**
 * Network namespaces made by tests: nsbox runs inside one (`nsenter --net`),
 * so that everything it does to "the host's" network — links, addresses,
 * nft tables, ip_forward — happens in a namespace the test owns, and no
 * packet can reach this machine's real interfaces.
 */
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { NSBOX } from './cli.js';

let counter = 0;

export class TestNetns {
  readonly name: string;
  constructor(tag = 'n') {
    this.name = `nsbox-t${process.pid % 100000}-${tag}${counter++}`;
    execFileSync('ip', ['netns', 'add', this.name]);
    this.sh('ip link set lo up');
  }
  get path(): string { return `/run/netns/${this.name}`; }
  /** The namespace's inode: nsbox keeps its state in /run/nsbox/net/<inode>. */
  get inode(): number { return statSync(this.path).ino; }

  /** Runs a shell command inside (throws on failure). */
  sh(cmd: string): string {
    return execFileSync('nsenter', [`--net=${this.path}`, 'sh', '-c', cmd], { encoding: 'utf8' });
  }
  /** Runs a shell command inside, returning the result whatever it is. */
  try(cmd: string, timeout = 20_000): SpawnSyncReturns<string> {
    return spawnSync('nsenter', [`--net=${this.path}`, 'sh', '-c', cmd], { encoding: 'utf8', timeout });
  }
  /** A background shell command inside. */
  bg(cmd: string) {
    // Its own process group: kill() ends the whole pipeline (a listener left
    // behind would hold the pipes, and mocha, open after the last test).
    const child = spawn('nsenter', [`--net=${this.path}`, 'sh', '-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.kill = (signal: NodeJS.Signals | number = 'SIGTERM') => {
      try { process.kill(-child.pid!, signal); return true; } catch { return false; }
    };
    return child;
  }
  /** nsbox run inside, synchronously. */
  nsbox(args: string[], timeout = 60_000): SpawnSyncReturns<string> {
    return spawnSync('nsenter', [`--net=${this.path}`, process.execPath, NSBOX, ...args], { encoding: 'utf8', timeout, input: '' });
  }
  /** nsbox run inside, in the background. */
  nsboxAsync(args: string[]) {
    return spawn('nsenter', [`--net=${this.path}`, process.execPath, NSBOX, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  }
  links(): string[] { return this.sh('ip -o link show | cut -d: -f2 | cut -d@ -f1').split('\n').map((l) => l.trim()).filter(Boolean); }
  nftTables(): string[] { return this.sh('nft list tables').split('\n').filter(Boolean); }
  ipForward(): string { return this.sh('cat /proc/sys/net/ipv4/ip_forward').trim(); }

  /** What nsbox may have left in this namespace: links beyond `keep`, nft tables, its state directory, forwarding on. */
  leftovers(keep: string[] = []): string[] {
    const out = this.links().filter((l) => l !== 'lo' && !keep.includes(l)).map((l) => `link ${l}`);
    out.push(...this.nftTables().map((t) => `nft ${t}`));
    if (existsSync(`/run/nsbox/net/${this.inode}`)) out.push(`/run/nsbox/net/${this.inode}`);
    if (this.ipForward() !== '0') out.push('net.ipv4.ip_forward=1');
    return out;
  }

  remove(): void { spawnSync('ip', ['netns', 'del', this.name]); }
}

/** Whether this kernel can make links of kind (e.g. ipvlan), tried in a scratch namespace on top of a veth. */
export function kernelHasLinkKind(kind: string): boolean {
  const ns = new TestNetns('probe');
  try {
    return ns.try(`ip link add p0 type veth peer name p1 && ip link add k0 link p0 type ${kind}`).status === 0;
  } finally { ns.remove(); }
}
