/** `nsbox run`: parse, validate, supervise. */
import { writeSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { parseRunArgs, RUN_HELP } from '../runtime/args.js';
import { normalizeRunOptions } from '../runtime/options.js';
import { isatty } from '../runtime/isatty.js';

export async function main(argv: string[]): Promise<number> {
  try {
    const parsed = parseRunArgs(argv);
    if (parsed.help) { writeSync(1, RUN_HELP); return 0; }
    const opts = normalizeRunOptions(parsed, { isTTY: isatty(0) && isatty(1) });
    const { runOrBoot } = await import('../runtime/run.js');
    return await runOrBoot(opts);
  } catch (e) {
    // nsbox's own failures exit 125 so they never look like the command's status.
    if (e instanceof NsboxError && ![126, 127].includes(e.exitCode)) Object.defineProperty(e, 'exitCode', { value: 125 });
    throw e;
  }
}
