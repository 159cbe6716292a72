import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { makeBusyboxTree } from '../helpers/tree.js';
import { bootTree, removeTree } from '../helpers/debian-trees.js';
import { NSBOX } from '../helpers/cli.js';

/**
 * A pure cgroup2 host, as far as nsbox can tell: a private mount namespace
 * whose /sys/fs/cgroup is the unified hierarchy alone (on a v1-hybrid host
 * the controllers stay on their v1 hierarchies). `script` runs there with
 * $NSBOX set to the CLI.
 */
function onCgroup2(script: string, timeout = 120_000) {
  return spawnSync('unshare', ['-m', 'sh', '-c', `set -e
umount -l /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
nsbox() { "${process.execPath}" "${NSBOX}" "$@"; }
${script}`], { encoding: 'utf8', timeout });
}

describe('nsbox run on a pure cgroup2 host', function () {
  this.timeout(10 * 60_000);

  it('runs a command plainly, with -x -U and with -n, each in a cgroup of its own that is gone after', () => {
    const tree = makeBusyboxTree({ name: 'nsbox-cg2-' });
    try {
      const r = onCgroup2(`
nsbox run -q -D ${tree} -- /bin/sh -c 'echo plain; cat /proc/self/cgroup'
nsbox run -q -x -U -D ${tree} -- /bin/sh -c 'echo xU; cat /proc/self/uid_map; touch /x'
nsbox run -q -n -D ${tree} -- /bin/sh -c 'echo n; ip -4 -o addr show host0'
echo "left=$(find /sys/fs/cgroup/nsbox -mindepth 1 -maxdepth 1 -type d -name 'nsbox-cg2-*' | wc -l)"`);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^plain\n(?:\d+:[^\n]*\n)*0::\/$/m, 'its own cgroup namespace');
      assert.match(r.stdout, /^xU\n\s+0\s+[1-9]\d*\s+65536$/m);
      assert.match(r.stdout, /^n\n\d+: host0\s+inet \d+\.\d+\.\d+\.\d+\/28 /m);
      assert.match(r.stdout, /^left=0$/m, 'no container cgroup left');
    } finally { rmSync(tree, { recursive: true, force: true }); }
  });

  it('boots Debian bookworm with -U -n to running with no failed units and powers off with exit 0', async () => {
    const tree = await bootTree('bookworm');
    try {
      const r = onCgroup2(`
nsbox run -U -n -b -q -D ${tree} -M cg2-boot --console=passive </dev/null >/dev/null 2>&1 &
pid=$!
state=
for i in $(seq 1 600); do
  state=$(nsbox exec cg2-boot -- systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded|maintenance|stopping) break ;; esac
  sleep 0.2
done
echo "state=$state"
echo "failed=$(nsbox exec cg2-boot -- systemctl --failed --no-legend --plain | wc -l)"
nsbox exec cg2-boot -- systemctl poweroff
set +e; wait $pid; echo "exit=$?"`, 300_000);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^state=running$/m);
      assert.match(r.stdout, /^failed=0$/m);
      assert.match(r.stdout, /^exit=0$/m);
    } finally { removeTree(tree); }
  });
});
