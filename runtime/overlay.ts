/**
 * Host side of `--overlay`: a host upper layer needs a work directory on
 * its file system. As nspawn, it is a fresh sibling of the upper directory;
 * nsbox removes it after the run, and the guard does if nsbox is killed.
 * (-x, --volatile=overlay and an empty UPPER use a tmpfs inside the
 * container's own mount namespace instead: nothing on the host at all.)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SetupError } from '../errors.js';
import type { OverlaySpec } from './options.js';
import { resolveInTree } from './tree.js';

export interface OverlayDirs {
  /** Work directory per overlay (by index), for the plan. */
  work: (string | undefined)[];
  /** The overlays with "+" upper layers turned into host paths. */
  overlays: OverlaySpec[];
  guardEntries: string[];
  remove(): void;
}

export function prepareOverlays(tree: string, overlays: OverlaySpec[]): OverlayDirs {
  const made: string[] = [];
  const remove = () => { for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true }); };
  try {
    const out = overlays.map((o) => {
      if (!o.upper || o.upper === 'tmpfs') return { spec: o, work: undefined };
      const upper = o.upper.inTree ? resolveInTree(tree, o.upper.path) : o.upper.path;
      mkdirSync(upper, { recursive: true, mode: 0o755 });
      const work = mkdtempSync(join(dirname(upper), `.#nsbox-work-${basename(upper)}-`));
      made.push(work);
      return { spec: { ...o, upper: { path: upper, inTree: false } }, work };
    });
    return { work: out.map((x) => x.work), overlays: out.map((x) => x.spec), guardEntries: made.map((d) => `r${d}`), remove };
  } catch (e) {
    remove();
    throw new SetupError(`cannot prepare the upper layer of an overlay: ${(e as Error).message}`, { hint: 'check the upper directory is writable', exitCode: 125 });
  }
}
