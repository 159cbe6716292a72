/**
 * Ctrl-C, SIGTERM and SIGHUP as an AbortSignal for commands that clean up
 * after themselves (export, import): the first one aborts (the command
 * removes what it started and exits 130), a second one exits at once.
 */
import { writeSync } from 'node:fs';
import { AbortedError } from '../errors.js';

/** Runs `body` with a signal that the first SIGINT/SIGTERM/SIGHUP aborts. */
export async function withSignals<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let seen = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++seen > 1) {
      writeSync(2, `nsbox: ${sig} again: exiting now\n`);
      process.exit(130);
    }
    ac.abort(new AbortedError(`interrupted by ${sig}`));
  };
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of sigs) process.on(s, onSignal);
  try {
    return await body(ac.signal);
  } finally {
    for (const s of sigs) process.off(s, onSignal);
  }
}
