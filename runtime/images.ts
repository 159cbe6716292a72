/**
 * Machine images on disk, where systemd-nspawn and machinectl look for
 * them: a directory named after the machine in /etc/machines,
 * /run/machines, /var/lib/machines, /usr/local/lib/machines or
 * /usr/lib/machines (the first match wins; names starting with "." are
 * never images: `nsbox import` and machinectl build there). `nsbox import`
 * writes into /var/lib/machines.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The search path, in order (systemd's). */
export const IMAGE_DIRS = ['/etc/machines', '/run/machines', '/var/lib/machines', '/usr/local/lib/machines', '/usr/lib/machines'];
/** Where imported images go. */
export const IMPORT_DIR = '/var/lib/machines';

export interface ImageInfo {
  name: string;
  /** The directory (a symlink to one counts, as for machinectl). */
  path: string;
  /** Last modification of the image's root directory, ISO 8601. */
  modified: string;
}

/**
 * The directory of image `name`, or undefined when no search directory holds one.
 *
 * @example
 * findImage('bookworm') // '/var/lib/machines/bookworm'
 */
export function findImage(name: string): string | undefined {
  if (!name || name.startsWith('.') || name.includes('/')) return undefined;
  for (const dir of IMAGE_DIRS) {
    const path = join(dir, name);
    try {
      if (statSync(path).isDirectory()) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Every image on the search path, by name (a name shadowed by an earlier directory is listed once). */
export function listImages(): ImageInfo[] {
  const seen = new Map<string, ImageInfo>();
  for (const dir of IMAGE_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch { continue; }
    for (const name of names.sort()) {
      if (name.startsWith('.') || seen.has(name)) continue;
      try {
        const st = statSync(join(dir, name));
        if (st.isDirectory()) seen.set(name, { name, path: join(dir, name), modified: st.mtime.toISOString() });
      } catch { /* dangling link */ }
    }
  }
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}
