/**
 * Small trees for runtime tests, built without network from the host's
 * static busybox (Debian's busybox-static, installed by .ci/run).
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync, symlinkSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p)) ?? '/bin/busybox';

/** Builds a busybox tree in a fresh temp dir and returns its path. */
export function makeBusyboxTree(opts: { shell?: boolean; name?: string } = {}): string {
  const root = mkdtempSync(join(tmpdir(), opts.name ?? 'nsbox-tree-'));
  chmodSync(root, 0o755); // mkdtemp makes 0700: unprivileged users inside could not traverse /
  for (const d of ['bin', 'sbin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'run', 'usr/bin', 'usr/lib', 'var/tmp', 'home/user']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  chmodSync(join(root, 'tmp'), 0o1777);
  cpSync(BUSYBOX, join(root, 'bin/busybox'));
  if (opts.shell !== false) {
    const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const a of applets) {
      if (a === 'busybox') continue;
      try { symlinkSync('busybox', join(root, 'bin', a)); } catch { /* duplicate */ }
    }
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:User:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\ntty:x:5:\nusers:x:100:user\nuser:x:1000:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc/os-release'), 'NAME="nsbox test tree"\nID=nsboxtest\n');
  writeFileSync(join(root, 'nsbox-tree-marker'), 'inside\n');
  execFileSync('chown', ['1000:1000', join(root, 'home/user')]);
  return root;
}
