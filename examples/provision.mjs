#!/usr/bin/env node
// Provisioning with nsbox as a library: two containers from one shared
// recipe, each with its own post-install steps.
//
//   web: sshd on port 2222, root logs in with your key
//   db:  an unprivileged `app` user (same key), no sshd
//
// Usage (as root): node examples/provision.mjs [ROOT_DIR] [PUBLIC_KEY]
//   ROOT_DIR    where the trees go (default /srv/nsbox-example): ROOT_DIR/web, ROOT_DIR/db
//   PUBLIC_KEY  authorized keys file (default ~/.ssh/id_ed25519.pub)
// Then: nsbox run -b -D ROOT_DIR/web   and   ssh -p 2222 root@127.0.0.1
import { homedir } from 'node:os';
import { join } from 'node:path';
import { bootstrap, run, recipes, NsboxError } from 'nsbox';

const [root = '/srv/nsbox-example', key = join(homedir(), '.ssh/id_ed25519.pub')] = process.argv.slice(2);

// One base: Debian bookworm, bootable, the host's mirror, UTC, a console login.
const base = recipes.debian({
  release: 'bookworm',
  variant: 'boot',
  include: ['less'],
  post: [{ kind: 'timezone', timezone: 'Etc/UTC' }, { kind: 'console-login' }],
});

const machines = {
  web: recipes.extend(base, {
    post: [
      { kind: 'hostname', hostname: 'web' },
      { kind: 'sshd', port: 2222, authorizedKeys: key },
      { kind: 'file', path: '/etc/motd', content: 'web: provisioned by nsbox\n' },
    ],
  }),
  db: recipes.extend(base, {
    post: [
      { kind: 'hostname', hostname: 'db' },
      { kind: 'user', name: 'app', groups: ['users'], authorizedKeys: key },
      { kind: 'file', path: '/etc/app/db.conf', content: 'data=/var/lib/app\n', mode: 0o640, owner: 'app' },
    ],
  }),
};

// Ctrl-C cancels the bootstrap in progress (the tree stays marked incomplete; a rerun starts over with the cache).
const ac = new AbortController();
process.once('SIGINT', () => ac.abort());

try {
  for (const [name, recipe] of Object.entries(machines)) {
    const dir = join(root, name);
    const result = await bootstrap(recipe, dir, {
      signal: ac.signal,
      force: true, // rebuild over an earlier run of this script
      onProgress: (e) => {
        if (e.type === 'phase' && e.status !== 'start') console.log(`${name}: ${e.phase} ${e.status}${e.detail ? ` (${e.detail})` : ''}`);
        if (e.type === 'log' && e.level !== 'debug') console.log(`${name}: ${e.message}`);
      },
    });
    console.log(`${name}: ${Object.keys(result.packages).length} packages, ${result.downloadedBytes} bytes downloaded`);
    // A one-shot command inside the new tree; run() resolves with its exit status.
    const code = await run(dir, { command: ['sh', '-c', 'echo "$(cat /etc/hostname): $(. /etc/os-release; echo $PRETTY_NAME)"'], signal: ac.signal });
    if (code !== 0) throw new Error(`${name}: the check command exited with ${code}`);
  }
  console.log(`done: nsbox run -b -D ${join(root, 'web')}   (then ssh -p 2222 root@127.0.0.1)`);
} catch (err) {
  // NsboxError messages are the ones the CLI prints; `hint` says what to do.
  if (err instanceof NsboxError) {
    console.error(`provision: ${err.message}${err.hint ? ` (${err.hint})` : ''}`);
    process.exit(err.exitCode);
  }
  throw err;
}
