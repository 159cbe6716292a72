/**
 * Container activation without a host systemd: nsbox holds the listening
 * sockets, boots the container when the first connection is pending (without
 * accepting it: the container's systemd takes the sockets over and serves
 * it), and optionally powers the container off after an idle period, then
 * listens again.
 */
import { readFileSync, writeSync } from 'node:fs';
import { NsboxError, SetupError } from '../errors.js';
import type { RunOptions } from './options.js';
import type { ListenSpec } from './listen.js';
import { native } from './native.js';
import { supervise } from './supervise.js';
import { findInit, initIsSystemd } from './tree.js';

export interface ActivateOptions {
  run: RunOptions;
  listen: ListenSpec[];
  /** Power off after this many seconds without a connection (0: never). */
  idleStopSeconds: number;
  log?: (line: string) => void;
  /** Stops listening (and the container) when aborted. */
  signal?: AbortSignal;
}

const ERRNO: Record<number, string> = { 98: 'address already in use', 13: 'permission denied', 99: 'address not available on this host', 22: 'invalid address', 97: 'address family not supported' };

/** Opens the listening sockets, or throws one clear error. */
export function openListeners(specs: ListenSpec[]): number[] {
  const nat = native();
  const fds: number[] = [];
  for (const s of specs) {
    const fd = nat.listen(s.addr, s.port);
    if (fd < 0) {
      for (const f of fds) nat.close(f);
      throw new SetupError(`cannot listen on ${s.text}: ${ERRNO[-fd] ?? `errno ${-fd}`}`, {
        hint: -fd === 98 ? 'another program uses that port; pick another with --listen' : undefined,
      });
    }
    fds.push(fd);
  }
  return fds;
}

/** Established connections to our ports plus connections waiting in the accept queues. */
export function activeConnections(ports: number[]): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      const port = parseInt(f[1].split(':')[1], 16);
      if (!ports.includes(port)) continue;
      const state = f[3];
      if (state === '01') n++; // ESTABLISHED
      else if (state === '0A') n += parseInt(f[4].split(':')[1], 16); // LISTEN: rx_queue = accept backlog
    }
  }
  return n;
}

/**
 * Runs the activation loop until aborted. Resolves with 0.
 *
 * @example
 * await activate({ run: opts, listen: parseListen('127.0.0.1:2222'), idleStopSeconds: 300 });
 */
export async function activate(o: ActivateOptions): Promise<number> {
  const log = o.log ?? ((l: string) => writeSync(2, `${l}\n`));
  const init = findInit(o.run.directory);
  if (!init || !initIsSystemd(o.run.directory, init)) {
    throw new SetupError(`\`${o.run.directory}\` does not boot systemd${init ? ` (its init is ${init})` : ''}: socket activation needs systemd in the container to take the sockets over with .socket units`, {
      hint: 'install systemd in the tree (nsbox bootstrap … --variant boot)', exitCode: 125,
    });
  }
  const nat = native();
  const fds = openListeners(o.listen);
  const ports = o.listen.map((l) => l.port);
  log(`Listening on ${o.listen.map((l) => l.text).join(', ')}; ${o.run.machine} boots on the first connection.`);
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    while (!stop.signal.aborted) {
      // Wait in slices so an abort is noticed without accepting anything.
      const idx = await nat.waitReadable(fds, 500);
      if (idx < 0) continue;
      log(`Connection pending on ${o.listen[idx].text}: booting ${o.run.machine}.`);
      const session = new AbortController();
      const onStop = () => session.abort();
      stop.signal.addEventListener('abort', onStop, { once: true });
      let ready = false;
      let idleTimer: NodeJS.Timeout | undefined;
      if (o.idleStopSeconds > 0) {
        let idleSince = Date.now();
        idleTimer = setInterval(() => {
          if (!ready) return;
          if (activeConnections(ports) > 0) { idleSince = Date.now(); return; }
          if (Date.now() - idleSince >= o.idleStopSeconds * 1000) {
            log(`${o.run.machine} idle for ${o.idleStopSeconds}s: powering off.`);
            session.abort();
          }
        }, 1000);
      }
      try {
        const code = await supervise({ ...o.run, boot: true, listenFds: fds }, {
          forwardSignals: false, signal: session.signal, log,
          onReady: () => { ready = true; log(`${o.run.machine} is up.`); },
        });
        if (!ready && !stop.signal.aborted) {
          const dropped = fds.reduce((n, fd) => n + nat.drainPending(fd), 0);
          log(`nsbox: ${o.run.machine} ended before it finished booting (exit status ${code}); closed ${dropped} waiting connection(s); listening again.`);
        } else {
          log(`${o.run.machine} powered off (exit status ${code}); listening again.`);
        }
      } catch (e) {
        if (!(e instanceof NsboxError) || e.code === 'name-taken') throw e;
        const dropped = fds.reduce((n, fd) => n + nat.drainPending(fd), 0);
        log(`nsbox: cannot boot ${o.run.machine}: ${e.message}; closed ${dropped} waiting connection(s); listening again.`);
        await new Promise((r) => setTimeout(r, 1000)); // no busy loop on a persistent fault
      } finally {
        if (idleTimer) clearInterval(idleTimer);
        stop.signal.removeEventListener('abort', onStop);
      }
    }
    return 0;
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
    for (const fd of fds) nat.close(fd);
  }
}
