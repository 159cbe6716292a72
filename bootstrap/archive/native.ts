/**
 * The two file-system calls Node does not have: mknod(2) (device nodes and
 * FIFOs) and lsetxattr(2) (file capabilities, SELinux labels). Loaded through
 * koffi only when an archive contains such an entry.
 */
import os from 'node:os';

type Libc = {
  mknod: (path: string, mode: number, dev: bigint) => number;
  lsetxattr: (path: string, name: string, value: Buffer, size: number, flags: number) => number;
  errno: () => number;
};

let libc: Promise<Libc> | undefined;

function load(): Promise<Libc> {
  libc ??= import('koffi').then((m) => {
    const koffi = (m as unknown as { default?: typeof import('koffi') }).default ?? (m as unknown as typeof import('koffi'));
    const lib = koffi.load('libc.so.6');
    return {
      mknod: lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)') as Libc['mknod'],
      lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as Libc['lsetxattr'],
      errno: () => koffi.errno(),
    };
  });
  return libc;
}

function errnoError(call: string, path: string, errno: number): NodeJS.ErrnoException {
  const name = Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
  const e = new Error(`${call} \`${path}\`: ${name}`) as NodeJS.ErrnoException;
  e.code = name;
  e.errno = errno;
  e.path = path;
  return e;
}

/** Linux makedev(3). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/**
 * mknod(2): `type` is S_IFCHR, S_IFBLK or S_IFIFO; `perm` the permission bits.
 *
 * @example
 * await mknod('/tree/dev/null', S_IFCHR, 0o666, 1, 3);
 */
export async function mknod(path: string, type: number, perm: number, major = 0, minor = 0): Promise<void> {
  const c = await load();
  if (c.mknod(path, type | (perm & 0o7777), makedev(major, minor)) !== 0) throw errnoError('mknod', path, c.errno());
}

/**
 * lsetxattr(2) on a path (not following a final symlink).
 *
 * @example
 * await setXattr('/tree/usr/bin/ping', 'security.capability', capBytes);
 */
export async function setXattr(path: string, name: string, value: Buffer): Promise<void> {
  const c = await load();
  if (c.lsetxattr(path, name, value, value.length, 0) !== 0) throw errnoError(`setxattr ${name}`, path, c.errno());
}
