/**
 * tree → tar, the way mmdebstrap has GNU tar write its tarballs
 * (`--sort=name --mtime=@$SOURCE_DATE_EPOCH --clamp-mtime --numeric-owner
 * --one-file-system --format=pax --xattrs`): members in byte order of their
 * names, depth first, paths `./…`; numeric owners only; modification times
 * clamped to `clampMtime` when given, and no access or change times at all;
 * every extended attribute (file capabilities included) as a pax record;
 * hard links as links to the first path of the inode; devices and FIFOs;
 * sockets left out, as tar leaves them out; directories on another file
 * system written but not entered. Same tree, same options: same bytes.
 *
 * Every file-system call is synchronous (see writer.ts for why), and file
 * contents are read straight into the output chunks; the stream yields
 * chunks of about a mebibyte for a compressor to take.
 */
import { closeSync, constants as C, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { NsboxError } from '../../errors.js';
import { loadXattrReader, type XattrReader } from './native.js';
import { encodeHeader, padding, trailer, type TarHeader, type TarType } from './tar-header.js';

export interface PackOptions {
  /** Modification times later than this (seconds; SOURCE_DATE_EPOCH) are written as it. */
  clampMtime?: number;
  /** Write device nodes (default true). OCI layers leave them out: the runtime makes /dev. */
  devices?: boolean;
  /** Refuse names beginning with `.wh.`: an OCI layer reads them as deletions. */
  refuseWhiteoutNames?: boolean;
  /** Write every member as owned by these ids instead of its own (an archive of files nsbox wrote). */
  owner?: { uid: number; gid: number };
  /** Tree-relative paths (`var/lib/x`) left out, with everything below them. */
  exclude?: string[];
  signal?: AbortSignal;
  /**
   * Where output chunks come from, all of one size (a compressor's recycled
   * blocks: file data is read straight into them, and a fresh page costs more
   * than a copy); each is filled whole before it is yielded, but the last.
   */
  buffers?: () => Buffer;
}

/** What a pack wrote and left out (filled in while the stream is read). */
export interface PackStats {
  entries: number;
  files: number;
  /** Content bytes of regular files. */
  bytes: number;
  /** Archive bytes, trailer included. */
  archiveBytes: number;
  skippedSockets: number;
  skippedDevices: number;
  /** Directories on another file system, written without their contents. */
  mountPoints: number;
}

const CHUNK = 1 << 20;
const SLASH = 0x2f;
const NOATIME = process.getuid?.() === 0 ? (C.O_NOATIME ?? 0) : 0;

/** Output chunks built in place: headers copied in, file data read straight in. */
class Chunks {
  ready: Buffer[] = [];
  readonly #alloc: () => Buffer;
  #buf: Buffer;
  #pos = 0;
  total = 0;

  constructor(alloc: () => Buffer = () => Buffer.allocUnsafe(CHUNK)) {
    this.#alloc = alloc;
    this.#buf = alloc();
  }

  push(b: Buffer): void {
    for (let off = 0; off < b.length;) {
      const n = b.copy(this.#buf, this.#pos, off);
      off += n;
      this.#advance(n);
    }
  }

  zeros(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.#buf.length - this.#pos);
      this.#buf.fill(0, this.#pos, this.#pos + k);
      this.#advance(k);
      n -= k;
    }
  }

  /** Reads up to `n` bytes of `fd` at `position` into the chunk; returns how many came. */
  read(fd: number, n: number, position: number): number {
    const got = readSync(fd, this.#buf, this.#pos, Math.min(n, this.#buf.length - this.#pos), position);
    this.#advance(got);
    return got;
  }

  #advance(n: number): void {
    this.#pos += n;
    this.total += n;
    if (this.#pos === this.#buf.length) {
      this.ready.push(this.#buf);
      this.#buf = this.#alloc();
      this.#pos = 0;
    }
  }

  end(): void {
    if (this.#pos) this.ready.push(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
  }
}

function typeOf(st: BigIntStats): TarType | 'socket' | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return undefined;
}

/** Linux's major(3)/minor(3) of a dev_t. */
function major(d: bigint): number {
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}
function minor(d: bigint): number {
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

/**
 * Packs the tree at `root` into a tar stream. `stats` fills in as the
 * stream is read. Fails with an NsboxError naming the path when a file
 * cannot be read, or shrinks while it is read.
 *
 * @example
 * const { stream } = packTree('/srv/tree', { clampMtime: Number(process.env.SOURCE_DATE_EPOCH) });
 * await pipeline(stream, createWriteStream('/tmp/tree.tar'));
 */
export function packTree(root: string, opts: PackOptions = {}): { stream: AsyncGenerator<Buffer>; stats: PackStats } {
  const stats: PackStats = { entries: 0, files: 0, bytes: 0, archiveBytes: 0, skippedSockets: 0, skippedDevices: 0, mountPoints: 0 };
  return { stream: generate(root.replace(/\/+$/, '') || '/', opts, stats), stats };
}

async function* generate(root: string, opts: PackOptions, stats: PackStats): AsyncGenerator<Buffer> {
  const readXattrs = await loadXattrReader();
  const out = new Chunks(opts.buffers);
  const rootBuf = Buffer.from(root === '/' ? '' : root);
  const exclude = new Set((opts.exclude ?? []).map((p) => p.replace(/^\.?\/+|\/+$/g, '')));
  const links = new Map<string, Buffer>();
  const rootSt = lstatSync(root, { bigint: true });
  if (!rootSt.isDirectory()) throw new NsboxError(`cannot pack \`${root}\`: not a directory`);
  const ctx: Ctx = { root, rootBuf, rootDev: rootSt.dev, opts, stats, out, links, readXattrs, exclude };

  // Depth first, each directory's names in byte order (GNU tar's --sort=name).
  const stack: Array<{ rel: Buffer; st: BigIntStats }> = [{ rel: Buffer.alloc(0), st: rootSt }];
  while (stack.length) {
    opts.signal?.throwIfAborted();
    const { rel, st } = stack.pop()!;
    try {
      if (entry(ctx, rel, st)) {
        const abs = rel.length ? Buffer.concat([rootBuf, Buffer.from('/'), rel]) : Buffer.from(root);
        const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
        const children: Array<{ rel: Buffer; st: BigIntStats }> = [];
        for (const name of names) {
          const r = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
          if (exclude.size && exclude.has(r.toString())) continue;
          children.push({ rel: r, st: lstatSync(Buffer.concat([abs, Buffer.from('/'), name]), { bigint: true }) });
        }
        for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
      }
    } catch (err) {
      if (err instanceof NsboxError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new NsboxError(`cannot read \`${rel.length ? rel.toString() : '.'}\` in \`${root}\`: ${e.code ?? e.message}`, { cause: err });
    }
    if (out.ready.length) {
      const ready = out.ready;
      out.ready = [];
      yield* ready;
    }
  }
  out.push(trailer(out.total));
  out.end();
  stats.archiveBytes = out.total;
  yield* out.ready;
}

interface Ctx {
  root: string;
  rootBuf: Buffer;
  rootDev: bigint;
  opts: PackOptions;
  stats: PackStats;
  out: Chunks;
  links: Map<string, Buffer>;
  readXattrs: XattrReader;
  exclude: Set<string>;
}

/** Writes one member; returns whether its contents (a directory's) are to be walked. */
function entry(ctx: Ctx, rel: Buffer, st: BigIntStats): boolean {
  const { opts, stats, out } = ctx;
  const type = typeOf(st);
  const abs = rel.length ? Buffer.concat([ctx.rootBuf, Buffer.from('/'), rel]) : Buffer.from(ctx.root);
  const shown = rel.length ? rel.toString() : '.';
  if (type === 'socket' || type === undefined) {
    stats.skippedSockets++;
    return false;
  }
  if ((type === 'char' || type === 'block') && opts.devices === false) {
    stats.skippedDevices++;
    return false;
  }
  if (opts.refuseWhiteoutNames && rel.length) {
    const slash = rel.lastIndexOf(SLASH);
    if (rel.subarray(slash + 1, slash + 5).toString() === '.wh.') {
      throw new NsboxError(`cannot export \`${shown}\` into an OCI layer: names beginning with \`.wh.\` mark deletions there`, { hint: 'rename or remove it, or export to a tar file instead' });
    }
  }
  const path = Buffer.concat([Buffer.from('./'), rel, type === 'directory' && rel.length ? Buffer.from('/') : Buffer.alloc(0)]);
  // --clamp-mtime: later times become the clamp; earlier ones keep their nanoseconds
  let ns = st.mtimeNs;
  if (opts.clampMtime !== undefined && ns > BigInt(opts.clampMtime) * 1_000_000_000n) ns = BigInt(opts.clampMtime) * 1_000_000_000n;
  const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
  const h: TarHeader = {
    path, type, mode: Number(st.mode & 0o7777n), uid: opts.owner?.uid ?? Number(st.uid), gid: opts.owner?.gid ?? Number(st.gid),
    mtime: Number(sec), mtimeNsec: Number(ns - sec * 1_000_000_000n), extendedMtime: opts.clampMtime,
  };
  try {
    const xattrs = ctx.readXattrs(abs);
    if (xattrs.length) h.xattrs = xattrs;
  } catch (err) {
    throw new NsboxError(`cannot read the extended attributes of \`${shown}\` in \`${ctx.root}\`: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  stats.entries++;
  if (type === 'directory') {
    out.push(encodeHeader(h));
    if (rel.length && st.dev !== ctx.rootDev) {
      stats.mountPoints++;
      return false;
    }
    return true;
  }
  if (type !== 'symlink' && st.nlink > 1n) {
    const id = `${st.dev}:${st.ino}`;
    const first = ctx.links.get(id);
    if (first) {
      out.push(encodeHeader({ ...h, type: 'hardlink', linkTarget: first, xattrs: undefined }));
      return false;
    }
    ctx.links.set(id, path);
  }
  if (type === 'symlink') {
    h.linkTarget = readlinkSync(abs, { encoding: 'buffer' });
    out.push(encodeHeader(h));
  } else if (type === 'char' || type === 'block') {
    out.push(encodeHeader({ ...h, devMajor: major(st.rdev), devMinor: minor(st.rdev) }));
  } else if (type === 'fifo') {
    out.push(encodeHeader(h));
  } else {
    fileMember(ctx, abs, shown, h, Number(st.size));
  }
  return false;
}

function fileMember(ctx: Ctx, abs: Buffer, shown: string, h: TarHeader, size: number): void {
  const { out, stats } = ctx;
  let fd: number;
  try {
    fd = openSync(abs, C.O_RDONLY | C.O_NOFOLLOW | NOATIME);
  } catch (err) {
    throw new NsboxError(`cannot read \`${shown}\` in \`${ctx.root}\`: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    out.push(encodeHeader({ ...h, size }));
    let done = 0;
    while (done < size) {
      const n = out.read(fd, size - done, done);
      if (n === 0) throw new NsboxError(`cannot export \`${shown}\` in \`${ctx.root}\`: it shrank while it was read`, { hint: 'stop whatever writes into the tree (a running container?) and retry' });
      done += n;
    }
    out.zeros(padding(size));
    stats.files++;
    stats.bytes += size;
  } finally {
    closeSync(fd);
  }
}
