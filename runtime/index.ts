/**
 * The runtime's library entry points: run a container from code, the way
 * the CLI does, without touching the caller's signal handlers.
 */
import { closeSync, openSync } from 'node:fs';
import { normalizeRunOptions, type RunInput } from './options.js';
import { supervise, type SuperviseHooks } from './supervise.js';
import { AbortedError } from '../errors.js';

export type { RunInput, RunOptions, ConsoleMode, LinkJournal } from './options.js';

export interface RunApiOptions extends Omit<RunInput, 'directory'> {
  /** Cancels the run: the container is terminated (powered off when booted). */
  signal?: AbortSignal;
  /** fds for the container's stdin, stdout and stderr (default: /dev/null, and this process's stdout/stderr). */
  stdio?: [number, number, number];
  /** Receives status lines ("Spawning container…") instead of stderr. */
  onLog?: (line: string) => void;
}

/**
 * Runs a command (or boots, with `boot: true`) in the tree at `dir` and
 * resolves with its exit status. Never asks for a terminal: the console is
 * `pipe` unless you say otherwise.
 *
 * @example
 * const code = await run('/srv/deb', { command: ['apt-get', 'update'], machine: 'build' });
 */
export async function run(dir: string, options: RunApiOptions = {}): Promise<number> {
  const { signal, stdio, onLog, ...input } = options;
  if (signal?.aborted) throw new AbortedError();
  const opts = normalizeRunOptions({ console: 'pipe', quiet: true, ...input, directory: dir }, { isTTY: false });
  let devnull = -1;
  let fds = stdio;
  if (!fds) { devnull = openSync('/dev/null', 'r'); fds = [devnull, 1, 2]; }
  try {
    const hooks: SuperviseHooks = { forwardSignals: false, signal, stdio: fds, log: onLog ?? (() => {}) };
    const code = await supervise(opts, hooks);
    if (signal?.aborted) throw new AbortedError();
    return code;
  } finally {
    if (devnull >= 0) closeSync(devnull);
  }
}
