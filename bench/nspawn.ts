/**
 * systemd-nspawn as the benches start it, where no host systemd gives it a
 * scope: in a private mount namespace with a tmpfs /run (shared/DESIGN.md),
 * and in a cgroup of its own in each hierarchy, as a scope would be
 * (--keep-unit at the root cgroup leaves a -U container no cgroup it may
 * write: its systemd stops at "Failed to create /init.scope control group").
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { removeCgroup } from '../runtime/cgroup.js';

const GROUP = 'nsbox-bench-nspawn';
const HIERARCHIES = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup'];
const SCRIPT = `for h in ${HIERARCHIES.join(' ')}; do
  if [ -e "$h/cgroup.procs" ]; then mkdir -p "$h/${GROUP}" && echo $$ > "$h/${GROUP}/cgroup.procs" || exit 1; fi
done
mount -t tmpfs tmpfs /run && exec systemd-nspawn --register=no --keep-unit -q "$@"`;

/** The whole argv: nspawnArgv(['-D', tree, '/bin/true']). */
export function nspawnArgv(args: string[]): string[] {
  return ['unshare', '-m', 'sh', '-c', SCRIPT, 'sh', ...args];
}

/** Removes the benches' nspawn cgroups (and what nspawn and its container made below them). */
export function removeNspawnCgroups(): void {
  for (const h of HIERARCHIES) if (existsSync(join(h, GROUP))) removeCgroup(join(h, GROUP));
}
