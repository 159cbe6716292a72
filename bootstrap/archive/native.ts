/**
 * The file-system calls Node does not have: mknod(2) (device nodes and
 * FIFOs), lsetxattr(2) (file capabilities, SELinux labels) and, for the tar
 * writer, llistxattr(2)/lgetxattr(2). Loaded through koffi only when an
 * archive needs them.
 */
import os from 'node:os';

type Libc = {
  mknod: (path: string, mode: number, dev: bigint) => number;
  lsetxattr: (path: string, name: string, value: Buffer, size: number, flags: number) => number;
  /** Paths as NUL-terminated buffers: a tree's names need not be UTF-8. */
  llistxattr: (path: Buffer, list: Buffer | null, size: number) => number;
  lgetxattr: (path: Buffer, name: Buffer, value: Buffer | null, size: number) => number;
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
      llistxattr: lib.func('long llistxattr(const uint8_t *path, _Out_ uint8_t *list, size_t size)') as Libc['llistxattr'],
      lgetxattr: lib.func('long lgetxattr(const uint8_t *path, const uint8_t *name, _Out_ uint8_t *value, size_t size)') as Libc['lgetxattr'],
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

/** Reads every extended attribute of a path (not following a final symlink), names sorted; see loadXattrReader. */
export type XattrReader = (path: Buffer) => Array<[name: string, value: Buffer]>;

/**
 * A synchronous reader of extended attributes (llistxattr + lgetxattr):
 * the tar writer calls it once per entry, so it must not cost a thread-pool
 * round trip. A file system without xattr support reads as none.
 *
 * @example
 * const read = await loadXattrReader();
 * read(Buffer.from('/srv/tree/usr/bin/ping')) // [['security.capability', <Buffer 01 00 00 02 …>]]
 */
export async function loadXattrReader(): Promise<XattrReader> {
  const c = await load();
  let list = Buffer.alloc(4096);
  let value = Buffer.alloc(4096);
  return (path) => {
    const p = Buffer.concat([path, Buffer.from([0])]);
    let n = c.llistxattr(p, list, list.length);
    if (n < 0) {
      const errno = c.errno();
      if (errno === os.constants.errno.ERANGE) {
        list = Buffer.alloc(Math.max(c.llistxattr(p, null, 0), list.length * 2));
        n = c.llistxattr(p, list, list.length);
      } else if (errno === os.constants.errno.ENOTSUP || errno === os.constants.errno.ENOENT) return [];
      if (n < 0) throw errnoError('llistxattr', path.toString(), c.errno());
    }
    if (n === 0) return [];
    const names: Buffer[] = [];
    for (let i = 0; i < n;) {
      const end = list.indexOf(0, i);
      if (end < 0 || end >= n) break;
      if (end > i) names.push(Buffer.from(list.subarray(i, end + 1)));
      i = end + 1;
    }
    names.sort(Buffer.compare);
    const out: Array<[string, Buffer]> = [];
    for (const name of names) {
      let m = c.lgetxattr(p, name, value, value.length);
      if (m < 0 && c.errno() === os.constants.errno.ERANGE) {
        value = Buffer.alloc(Math.max(c.lgetxattr(p, name, null, 0), value.length * 2));
        m = c.lgetxattr(p, name, value, value.length);
      }
      if (m < 0) {
        if (c.errno() === os.constants.errno.ENODATA) continue; // removed between the two calls
        throw errnoError(`getxattr ${name.subarray(0, -1).toString()}`, path.toString(), c.errno());
      }
      out.push([name.subarray(0, -1).toString('latin1'), Buffer.from(value.subarray(0, m))]);
    }
    return out;
  };
}
