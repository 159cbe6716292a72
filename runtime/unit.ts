/**
 * systemd units that run a tree as a service under a host systemd, the way
 * systemd-nspawn@.service does: Type=notify (nsbox relays the container's
 * READY=1), KillMode=mixed (SIGTERM to nsbox, which powers the container off
 * with SIGRTMIN+3), Delegate=yes (the container gets its own cgroup subtree),
 * and an optional .socket unit whose sockets nsbox passes to the container.
 */
import type { ListenSpec } from './listen.js';

export interface UnitInput {
  name: string;
  /** argv of `nsbox run …` (node, script, run, options…). */
  execStart: string[];
  directory: string;
  socket?: ListenSpec[];
}

/** Quotes one ExecStart word for systemd (specifiers and variables escaped). */
export function quoteWord(w: string): string {
  const escaped = w.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) && escaped !== '' ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function unitNames(name: string): { service: string; socket: string } {
  return { service: `nsbox-${name}.service`, socket: `nsbox-${name}.socket` };
}

/** Renders the .service (and .socket) unit files. */
export function renderUnits(u: UnitInput): { service: string; socket?: string } {
  const n = unitNames(u.name);
  const service = [
    '[Unit]',
    `Description=nsbox container ${u.name}`,
    'Documentation=man:systemd-nspawn(1)',
    'After=network.target',
    ...(u.socket ? [`Requires=${n.socket}`, `After=${n.socket}`] : []),
    `RequiresMountsFor=${u.directory}`,
    '',
    '[Service]',
    'Type=notify',
    'NotifyAccess=main',
    `ExecStart=${u.execStart.map(quoteWord).join(' ')}`,
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    'Delegate=yes',
    'TimeoutStopSec=90s',
    'Restart=on-failure',
    // nsbox restarts a container that reboots in place; exit 0 is a poweroff.
    'SuccessExitStatus=0',
    'Slice=machine.slice',
    '',
    '[Install]',
    'WantedBy=machines.target',
    '',
  ].join('\n');
  if (!u.socket) return { service };
  const socket = [
    '[Unit]',
    `Description=nsbox container ${u.name} (socket)`,
    '',
    '[Socket]',
    ...u.socket.map((s) => `ListenStream=${s.addr ? (s.addr.includes(':') ? `[${s.addr}]` : s.addr) + ':' : ''}${s.port}`),
    `Service=${n.service}`,
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ].join('\n');
  return { service, socket };
}
