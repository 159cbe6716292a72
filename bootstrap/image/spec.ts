/**
 * What `nsbox export`, `bootstrap --output` and `nsbox import` are pointed
 * at, as data: the output format follows the name, as mmdebstrap picks it
 * (`.tar`, `.tar.gz`/`.tgz`, `.tar.xz`/`.txz`, `.tar.zst`/`.tzst`,
 * `.squashfs`/`.sqfs`, `-` for a tar on stdout), and the transports of
 * skopeo and podman name OCI images (`oci:PATH[:TAG]` for an image layout
 * directory, `oci-archive:FILE[:TAG]` for one in a tar file).
 */
import { basename, resolve } from 'node:path';
import { UsageError } from '../../errors.js';

export type TarCompression = 'none' | 'gzip' | 'xz' | 'zstd';

export type OutputTarget =
  | { kind: 'tar'; path: string; compression: TarCompression }
  | { kind: 'squashfs'; path: string }
  | { kind: 'oci'; path: string; tag: string; archive: boolean };

export type ImportSource =
  /** A tar file (any compression; an uncompressed OCI archive is recognised by its contents), or `-`. */
  | { kind: 'file'; path: string }
  | { kind: 'oci'; path: string; tag?: string; archive: boolean };

/** The tag an image gets when none is named. */
export const DEFAULT_TAG = 'latest';

const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** Image names are machine names (runtime/options.ts). */
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const TAR_NAMES: Array<[RegExp, TarCompression]> = [
  [/\.tar$/, 'none'],
  [/\.(tar\.gz|tgz)$/, 'gzip'],
  [/\.(tar\.xz|txz)$/, 'xz'],
  [/\.(tar\.zst|tar\.zstd|tzst)$/, 'zstd'],
];

const FORMATS_HINT = 'name it *.tar, *.tar.gz, *.tar.xz, *.tar.zst or *.squashfs, or write oci:DIR[:TAG] or oci-archive:FILE.tar[:TAG]';

/** Splits `PATH[:TAG]` at its last colon when what follows is a tag (a path may hold colons too). */
function pathAndTag(rest: string, spec: string): { path: string; tag?: string } {
  const i = rest.lastIndexOf(':');
  if (i > 0 && TAG.test(rest.slice(i + 1))) return { path: rest.slice(0, i), tag: rest.slice(i + 1) };
  if (i > 0 && !rest.slice(i + 1).includes('/')) {
    throw new UsageError(`invalid tag \`${rest.slice(i + 1)}\` in \`${spec}\``, { hint: 'a tag is letters, digits, ".", "_" and "-" (at most 128, not starting with "." or "-")' });
  }
  return { path: rest };
}

/**
 * Reads an output name.
 *
 * @example
 * parseOutput('bookworm.tar.zst')      // { kind: 'tar', path: '/cwd/bookworm.tar.zst', compression: 'zstd' }
 * parseOutput('oci:/srv/img:bookworm') // { kind: 'oci', path: '/srv/img', tag: 'bookworm', archive: false }
 */
export function parseOutput(spec: string, cwd = process.cwd()): OutputTarget {
  if (!spec) throw new UsageError('missing output name', { hint: FORMATS_HINT });
  for (const [prefix, archive] of [['oci:', false], ['oci-archive:', true]] as const) {
    if (!spec.startsWith(prefix)) continue;
    const { path, tag } = pathAndTag(spec.slice(prefix.length), spec);
    if (!path) throw new UsageError(`missing path in \`${spec}\``, { hint: `write ${prefix}${archive ? 'FILE.tar' : 'DIR'}[:TAG]` });
    return { kind: 'oci', path: resolve(cwd, path), tag: tag ?? DEFAULT_TAG, archive };
  }
  if (spec === '-') return { kind: 'tar', path: '-', compression: 'none' };
  const name = basename(spec);
  for (const [re, compression] of TAR_NAMES) if (re.test(name)) return { kind: 'tar', path: resolve(cwd, spec), compression };
  if (/\.(squashfs|sqfs)$/.test(name)) return { kind: 'squashfs', path: resolve(cwd, spec) };
  if (/\.(tar\.bz2|tbz2?|tar\.lz4|ext2|ext4)$/.test(name)) {
    throw new UsageError(`cannot write \`${spec}\`: nsbox does not write that format`, { hint: FORMATS_HINT });
  }
  throw new UsageError(`cannot tell the output format of \`${spec}\` from its name`, { hint: FORMATS_HINT });
}

/**
 * Reads an import source: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, a file, or `-`.
 *
 * @example
 * parseSource('oci-archive:img.tar') // { kind: 'oci', path: '/cwd/img.tar', archive: true }
 */
export function parseSource(spec: string, cwd = process.cwd()): ImportSource {
  if (!spec) throw new UsageError('missing image file', { hint: 'nsbox import FILE|oci:DIR[:TAG]|oci-archive:FILE[:TAG] [NAME]' });
  for (const [prefix, archive] of [['oci:', false], ['oci-archive:', true]] as const) {
    if (!spec.startsWith(prefix)) continue;
    const { path, tag } = pathAndTag(spec.slice(prefix.length), spec);
    if (!path) throw new UsageError(`missing path in \`${spec}\``);
    return { kind: 'oci', path: resolve(cwd, path), tag, archive };
  }
  return { kind: 'file', path: spec === '-' ? '-' : resolve(cwd, spec) };
}

/**
 * The image name machinectl would derive from a file name: the base name
 * without its archive and compression extensions.
 *
 * @example
 * imageNameFrom({ kind: 'file', path: '/tmp/bookworm.tar.zst' }) // 'bookworm'
 */
export function imageNameFrom(source: ImportSource): string | undefined {
  if (source.path === '-') return undefined;
  let name = basename(source.path);
  for (;;) {
    const stripped = name.replace(/\.(tar|tgz|txz|tzst|gz|xz|zst|zstd|bz2|oci|raw)$/, '');
    if (stripped === name || !stripped) break;
    name = stripped;
  }
  name = name.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return IMAGE_NAME.test(name) ? name : undefined;
}

/** Refuses an image name that is not a machine name. */
export function checkImageName(name: string): string {
  if (!IMAGE_NAME.test(name)) {
    throw new UsageError(`invalid image name \`${name}\``, { hint: 'use letters, digits, "-", "_" and "." (at most 64, starting with a letter or digit)' });
  }
  return name;
}
