/**
 * sd_notify relaying: when nsbox runs as a Type=notify service (NOTIFY_SOCKET
 * set by the host's systemd), a booted container's own systemd reports
 * READY=1 to a socket nsbox holds, shown inside as /run/host/notify, and nsbox
 * passes readiness (and status lines) on to the host.
 */
import { mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { native } from './native.js';
import { STATE_DIR } from './registry.js';

export interface NotifyRelay {
  /** Host path of the socket to bind into the container. */
  path: string;
  close(): void;
}

/** Sends a message to our own service manager, if there is one. */
export function notifyHost(message: string): void {
  const target = process.env.NOTIFY_SOCKET;
  if (target) native().notifySend(target, message);
}

/**
 * Opens the relay socket and forwards READY=1 / STATUS= / STOPPING=1 from
 * the container to the host's NOTIFY_SOCKET; `onReady` fires once.
 */
export function startRelay(name: string, token: string, onReady?: () => void): NotifyRelay {
  const nat = native();
  const dir = join(STATE_DIR, 'notify');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${token.slice(0, 8)}.sock`);
  const fd = nat.notifySocket(path);
  if (fd < 0) throw new Error(`cannot create the notify socket \`${path}\`: errno ${-fd}`);
  let open = true;
  let ready = false;
  const loop = async () => {
    while (open) {
      const msg = await nat.notifyRecv(fd);
      if (!open || msg === undefined) break;
      const lines = msg.split('\n').filter((l) => /^(READY=1|STATUS=|STOPPING=1|RELOADING=1)/.test(l));
      if (lines.length) notifyHost(lines.join('\n'));
      if (!ready && lines.includes('READY=1')) { ready = true; onReady?.(); }
    }
  };
  void loop();
  return {
    path,
    close() {
      if (!open) return;
      open = false;
      // wake the blocked receive, then close
      nat.notifySend(path, 'X_NSBOX_CLOSE=1');
      setTimeout(() => nat.close(fd), 50).unref();
      try { unlinkSync(path); } catch { /* gone */ }
    },
  };
}
