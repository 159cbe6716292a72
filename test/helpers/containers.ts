/**
 * podman, skopeo and a docker-registry for tests, configured in a
 * temporary directory and never on the host: containers.conf and
 * storage.conf there (vfs storage: no mounts to leave behind; runc, as crun
 * refuses this host's hybrid cgroup layout; cgroupfs and a file event log,
 * as PID 1 is not systemd; no network namespace setup; rlimits below the
 * host's, which podman cannot raise here), a signature policy that accepts
 * anything, and every call in a private mount namespace where /var/lib is
 * read-only, so that the tools' blob-info cache under /var/lib/containers
 * is not written (they fall back to memory).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PRIVATE = 'mount --bind /var/lib /var/lib && mount -o remount,bind,ro /var/lib && exec "$@"';

export class Containers {
  readonly dir = mkdtempSync(join(tmpdir(), 'nsbox-containers-'));
  readonly env: NodeJS.ProcessEnv;
  readonly #children: ChildProcess[] = [];

  constructor() {
    const d = this.dir;
    mkdirSync(join(d, 'tmp'));
    writeFileSync(join(d, 'containers.conf'), [
      '[containers]', 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]', 'netns = "none"',
      '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `events_logfile_path = "${d}/events.log"`, 'runtime = "runc"', `tmp_dir = "${d}/libpod"`, '',
    ].join('\n'));
    writeFileSync(join(d, 'storage.conf'), ['[storage]', 'driver = "vfs"', `graphroot = "${d}/root"`, `runroot = "${d}/run"`, ''].join('\n'));
    writeFileSync(join(d, 'policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}');
    this.env = { ...process.env, CONTAINERS_CONF: join(d, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(d, 'storage.conf'), TMPDIR: join(d, 'tmp') };
  }

  #run(tool: string, args: string[]): SpawnSyncReturns<string> {
    return spawnSync('unshare', ['-m', 'sh', '-c', PRIVATE, 'sh', tool, ...args], { env: this.env, encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26 });
  }

  podman(args: string[]): SpawnSyncReturns<string> {
    return this.#run('podman', args);
  }

  skopeo(args: string[]): SpawnSyncReturns<string> {
    return this.#run('skopeo', ['--policy', join(this.dir, 'policy.json'), ...args]);
  }

  /** Starts docker-registry on 127.0.0.1 with its storage here; resolves with its host:port once it answers. */
  async registry(): Promise<string> {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.on('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const config = join(this.dir, 'registry.yml');
    writeFileSync(config, ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${this.dir}/registry`, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'));
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
      const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
      if (ok) return `127.0.0.1:${port}`;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not answer on 127.0.0.1:${port}: ${stderr}`);
  }

  /** Stops the registry and removes everything. */
  async cleanup(): Promise<void> {
    for (const c of this.#children) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('close', r));
        c.kill('SIGTERM');
        await gone;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
