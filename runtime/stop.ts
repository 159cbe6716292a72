/** Stopping a running machine, and finding its login shell. */
import { readFileSync } from 'node:fs';
import type { MachineEntry } from './registry.js';
import { processStart } from './registry.js';
import { SIGRTMIN_3 } from './native.js';


/**
 * Powers a booted machine off (SIGRTMIN+3 to its init) or sends SIGTERM to a
 * one-shot one, waits for its supervisor to finish, and sends SIGKILL to the
 * leader after `timeoutMs`.
 */
export async function stopMachine(m: MachineEntry, timeoutMs: number): Promise<void> {
  const gone = () => processStart(m.supervisor) !== m.supervisorStart;
  try { process.kill(m.leader, m.boot ? SIGRTMIN_3 : 'SIGTERM'); } catch { /* already gone */ }
  if (!m.boot) { try { process.kill(m.supervisor, 'SIGTERM'); } catch { /* gone */ } }
  const deadline = Date.now() + timeoutMs;
  while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!gone()) {
    try { process.kill(m.leader, 'SIGKILL'); } catch { /* gone */ }
    const hard = Date.now() + 5000;
    while (!gone() && Date.now() < hard) await new Promise((r) => setTimeout(r, 100));
  }
}

/** root's shell from the machine's own /etc/passwd (read through its root). */
export async function loginShell(m: MachineEntry): Promise<string> {
  try {
    const passwd = readFileSync(`/proc/${m.leader}/root/etc/passwd`, 'utf8');
    const root = passwd.split('\n').find((l) => l.startsWith('root:'));
    const shell = root?.split(':')[6];
    if (shell && shell.startsWith('/')) return shell;
  } catch { /* fall back */ }
  return '/bin/sh';
}
