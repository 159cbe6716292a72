/** Runs or boots a container from validated options. */
import type { RunOptions } from './options.js';
import { supervise, type SuperviseHooks } from './supervise.js';

export async function runOrBoot(opts: RunOptions, hooks: SuperviseHooks = {}): Promise<number> {
  return supervise(opts, hooks);
}
