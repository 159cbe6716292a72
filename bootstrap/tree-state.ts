/**
 * Marks a bootstrap target so that an interrupted run is recognised and a
 * rerun can restart it cleanly, and so that nsbox never writes into a
 * directory it did not create.
 *
 * Decision: while a bootstrap runs, `DIR/.nsbox-bootstrap.json` holds
 * `{ state: 'incomplete', … }`; it is written before anything else goes
 * into DIR. At the very end, the completion record is written *inside* the
 * tree at `DIR/var/lib/nsbox/bootstrap.json` (state `complete`, recipe
 * summary, start and finish times) and the marker is removed, so a finished
 * tree has nothing nsbox-specific at its top level. So:
 *
 *   marker present                → incomplete (interrupted, or running)
 *   var/lib/nsbox/bootstrap.json  → complete
 *   neither, empty or missing     → free to use
 *   neither, not empty            → foreign: refused unless `force`
 */
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { NsboxError, UsageError } from '../errors.js';
import { recordedNow } from './source-date.js';

export const MARKER = '.nsbox-bootstrap.json';
export const RECORD = 'var/lib/nsbox/bootstrap.json';

/** What a bootstrap was asked to build, as recorded in the tree. */
export interface RecipeSummary {
  distribution: string;
  release: string;
  arch: string;
  variant?: string;
  mirror?: string;
  packages?: string[];
  [key: string]: unknown;
}

export interface BootstrapRecord {
  tool: 'nsbox';
  version: 1;
  state: 'incomplete' | 'complete';
  recipe: RecipeSummary;
  started: string;
  finished?: string;
  /** Process that started it (to tell a running bootstrap from a dead one). */
  pid?: number;
}

export type TreeKind = 'missing' | 'empty' | 'incomplete' | 'complete' | 'foreign';

export interface TreeState {
  kind: TreeKind;
  record?: BootstrapRecord;
  /** For `incomplete`: whether the process that started it still runs. */
  running?: boolean;
}

/**
 * Tells what DIR is.
 *
 * @example
 * const s = await inspectTree('/srv/trixie');
 * if (s.kind === 'incomplete' && !s.running) await clearIncompleteTree('/srv/trixie');
 */
export async function inspectTree(dir: string): Promise<TreeState> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    if (code === 'ENOTDIR') return { kind: 'foreign' };
    throw new NsboxError(`cannot read \`${dir}\`: ${code ?? (err as Error).message}`, { cause: err });
  }
  const marker = await readRecord(join(dir, MARKER));
  if (marker) return { kind: 'incomplete', record: marker, running: marker.pid !== undefined && marker.pid !== process.pid && alive(marker.pid) };
  if (names.includes(MARKER)) return { kind: 'incomplete' }; // unreadable marker: still ours
  if (names.length === 0) return { kind: 'empty' };
  const record = await readRecord(join(dir, RECORD));
  if (record?.tool === 'nsbox') return { kind: 'complete', record };
  return { kind: 'foreign' };
}

/**
 * Checks DIR can be bootstrapped into and marks it incomplete. Refuses a
 * non-empty directory nsbox did not create (unless `force`), a finished
 * nsbox tree (unless `force`), and a bootstrap still running there.
 * An interrupted nsbox bootstrap is cleared first when `restart` is set
 * (default true), so the new run starts from an empty tree.
 *
 * @example
 * await beginTree('/srv/trixie', { distribution: 'debian', release: 'trixie', arch: 'amd64' });
 * … bootstrap …
 * await finishTree('/srv/trixie');
 */
export async function beginTree(dir: string, recipe: RecipeSummary, opts: { force?: boolean; restart?: boolean } = {}): Promise<BootstrapRecord> {
  const state = await inspectTree(dir);
  if (state.kind === 'foreign' && !opts.force) {
    throw new UsageError(`cannot bootstrap into \`${dir}\`: directory is not empty and was not created by nsbox`, { hint: 'choose an empty or new directory, or pass --force to write into it anyway' });
  }
  if (state.kind === 'complete' && !opts.force) {
    throw new UsageError(`cannot bootstrap into \`${dir}\`: it already holds a finished nsbox tree`, { hint: 'remove it first, or pass --force to bootstrap over it' });
  }
  if (state.kind === 'incomplete') {
    if (state.running) throw new UsageError(`cannot bootstrap into \`${dir}\`: another nsbox (pid ${state.record?.pid}) is bootstrapping it`);
    if (opts.restart ?? true) await clearIncompleteTree(dir);
  }
  await mkdir(dir, { recursive: true });
  const record: BootstrapRecord = { tool: 'nsbox', version: 1, state: 'incomplete', recipe, started: recordedNow().toISOString(), pid: process.pid };
  await writeAtomic(join(dir, MARKER), record);
  return record;
}

/**
 * Marks DIR complete: writes the record inside the tree, then removes the
 * top-level marker. Call it as the very last step.
 *
 * @example
 * await finishTree('/srv/trixie');
 */
export async function finishTree(dir: string): Promise<BootstrapRecord> {
  const marker = await readRecord(join(dir, MARKER));
  if (!marker) throw new NsboxError(`cannot finish \`${dir}\`: it is not a bootstrap in progress (no ${MARKER})`);
  const record: BootstrapRecord = { ...marker, state: 'complete', finished: recordedNow().toISOString() };
  delete record.pid;
  await mkdir(join(dir, 'var/lib/nsbox'), { recursive: true, mode: 0o755 });
  await writeAtomic(join(dir, RECORD), record);
  await rm(join(dir, MARKER), { force: true });
  return record;
}

/**
 * Empties a tree whose marker says `incomplete` (keeps DIR itself).
 * Refuses when anything is mounted below DIR, so a leftover bind mount of
 * host files is never deleted through.
 *
 * @example
 * if ((await inspectTree(dir)).kind === 'incomplete') await clearIncompleteTree(dir);
 */
export async function clearIncompleteTree(dir: string): Promise<void> {
  const state = await inspectTree(dir);
  if (state.kind !== 'incomplete') throw new NsboxError(`cannot clear \`${dir}\`: it is not an interrupted nsbox bootstrap`);
  const mounts = await mountsBelow(dir);
  if (mounts.length) {
    throw new NsboxError(`cannot clear \`${dir}\`: ${mounts.length} file system(s) still mounted below it, e.g. \`${mounts[0]}\``, { hint: `unmount them first (umount -R ${dir}/…)` });
  }
  for (const name of await readdir(dir)) {
    if (name === MARKER) continue;
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

async function mountsBelow(dir: string): Promise<string[]> {
  let info: string;
  try {
    info = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const root = resolve(dir);
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp && mp.startsWith(`${root}/`)) out.push(mp);
  }
  return out;
}

async function readRecord(path: string): Promise<BootstrapRecord | undefined> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > 1 << 20) return undefined;
    const r = JSON.parse(await readFile(path, 'utf8')) as BootstrapRecord;
    return r && r.tool === 'nsbox' ? r : undefined;
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
