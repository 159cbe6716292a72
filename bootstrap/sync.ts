/**
 * syncfs(2) on the file system holding a tree. The build writes without
 * fsync (dpkg's force-unsafe-io, and every in-tree command under
 * --suppress-sync); one syncfs before the tree is marked complete makes
 * "complete" mean "on disk". A first one runs while the package manager
 * configures the tree, so that the last has only that step's writes left.
 * Loaded through koffi (already a dependency).
 */
import { closeSync, openSync, constants } from 'node:fs';

type SyncFs = ((fd: number) => number) & { async(fd: number, cb: (err: unknown, res: number) => void): void };
let syncfs: Promise<SyncFs | undefined> | undefined;

function load(): Promise<SyncFs | undefined> {
  syncfs ??= import('koffi').then(
    (m) => {
      const koffi = (m as unknown as { default?: typeof import('koffi') }).default ?? (m as unknown as typeof import('koffi'));
      return koffi.load('libc.so.6').func('int syncfs(int fd)') as SyncFs;
    },
    () => undefined,
  );
  return syncfs;
}

/**
 * Flushes the file system that holds `dir` (the whole file system, as
 * `sync -f DIR` does). Falls back to a global sync when syncfs is missing.
 *
 * @example
 * await syncTree('/srv/trixie');
 */
export async function syncTree(dir: string): Promise<void> {
  const fn = await load();
  if (!fn) {
    const { execFileSync } = await import('node:child_process');
    execFileSync('sync', { stdio: 'ignore' });
    return;
  }
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    // On libuv's thread pool, so progress and signals keep flowing meanwhile.
    await new Promise<void>((resolve, reject) => fn.async(fd, (err) => (err ? reject(err) : resolve())));
  } finally {
    closeSync(fd);
  }
}
