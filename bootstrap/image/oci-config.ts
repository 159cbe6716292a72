/**
 * The OCI image configuration of an exported tree (image-spec config.md):
 * the tree's architecture and os, a default command and environment (the
 * ones Docker's official Debian images carry: PATH, and bash or sh), what
 * the user set (--entrypoint, --cmd, --env, --workdir, --user, --label), the
 * one layer's diff_id, and one history entry. Times come from
 * SOURCE_DATE_EPOCH when it is set, so the config is reproducible.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { UsageError } from '../../errors.js';
import { isExecutableInTree, readTreeFile, resolveInTree } from '../../runtime/tree.js';

/** An OCI platform: GOARCH-style architecture, optional variant. */
export interface Platform { architecture: string; variant?: string; os: 'linux' }

/** Distribution architecture names (Debian's, Fedora's) → OCI platform. */
const ARCH: Record<string, Omit<Platform, 'os'>> = {
  amd64: { architecture: 'amd64' }, x86_64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' }, aarch64: { architecture: 'arm64', variant: 'v8' },
  armhf: { architecture: 'arm', variant: 'v7' }, armv7hl: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v5' },
  i386: { architecture: '386' }, i686: { architecture: '386' },
  ppc64el: { architecture: 'ppc64le' }, ppc64le: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  mips64el: { architecture: 'mips64le' }, mipsel: { architecture: 'mipsle' },
  loong64: { architecture: 'loong64' }, loongarch64: { architecture: 'loong64' },
};

/** ELF e_machine (with class and byte order) → distribution-neutral architecture. */
function elfArch(head: Buffer): string | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = head[4] === 2;
  const le = head[5] === 1;
  const machine = le ? head.readUInt16LE(18) : head.readUInt16BE(18);
  switch (machine) {
    case 62: return 'amd64';
    case 183: return 'arm64';
    case 40: return 'armhf';
    case 3: return 'i386';
    case 21: return le ? 'ppc64el' : undefined;
    case 22: return 's390x';
    case 243: return is64 ? 'riscv64' : undefined;
    case 8: return is64 && le ? 'mips64el' : le ? 'mipsel' : undefined;
    case 258: return 'loong64';
    default: return undefined;
  }
}

/** Node's process.arch → distribution-neutral architecture. */
const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', ppc64: 'ppc64el', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** The host's platform, to pick from a multi-platform image. */
export function hostPlatform(): Platform {
  return { ...(ARCH[NODE_ARCH[process.arch] ?? 'amd64'] ?? { architecture: process.arch }), os: 'linux' };
}

/**
 * The tree's platform: the architecture nsbox recorded when it built the
 * tree, else dpkg's, else the ELF header of the tree's /bin/sh; `override`
 * (a Debian or Fedora architecture name) wins.
 *
 * @example
 * treePlatform('/srv/bookworm') // { architecture: 'amd64', os: 'linux' }
 */
export function treePlatform(root: string, override?: string): Platform {
  const name = override ?? recordedArch(root) ?? readTreeFile(root, '/var/lib/dpkg/arch')?.split('\n')[0]?.trim() ?? shellArch(root) ?? NODE_ARCH[process.arch];
  const p = name ? ARCH[name] : undefined;
  if (!p) throw new UsageError(`cannot tell the OCI architecture of \`${name}\``, { hint: `pass --arch with one of ${Object.keys(ARCH).join(', ')}` });
  return { ...p, os: 'linux' };
}

function recordedArch(root: string): string | undefined {
  try {
    const r = JSON.parse(readTreeFile(root, '/var/lib/nsbox/bootstrap.json') ?? 'null') as { recipe?: { arch?: string } } | null;
    return typeof r?.recipe?.arch === 'string' ? r.recipe.arch : undefined;
  } catch {
    return undefined;
  }
}

function shellArch(root: string): string | undefined {
  for (const sh of ['/bin/sh', '/usr/bin/sh', '/bin/busybox']) {
    try {
      const fd = openSync(resolveInTree(root, sh), 'r');
      const head = Buffer.alloc(64);
      try { readSync(fd, head, 0, 64, 0); } finally { closeSync(fd); }
      const a = elfArch(head);
      if (a) return a;
    } catch { /* not there */ }
  }
  return undefined;
}

/** What a user can set in the image's config. */
export interface ConfigInput {
  entrypoint?: string[];
  cmd?: string[];
  /** `KEY=VALUE`, replacing a default of the same key. */
  env?: string[];
  workdir?: string;
  user?: string;
  labels?: Record<string, string>;
  /** Architecture name overriding what the tree says. */
  arch?: string;
}

/** The default PATH of Docker's images. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Reads `--entrypoint`/`--cmd`: a JSON array (`["/bin/sh","-c","x"]`), or
 * words separated by spaces; an empty string clears it.
 *
 * @example
 * parseCommand('/bin/bash -l', '--cmd') // ['/bin/bash', '-l']
 */
export function parseCommand(value: string, flag: string): string[] {
  const v = value.trim();
  if (v.startsWith('[')) {
    let parsed: unknown;
    try { parsed = JSON.parse(v); } catch { parsed = undefined; }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
      throw new UsageError(`invalid ${flag} \`${value}\``, { hint: `give a JSON array of strings, e.g. ${flag} '["/bin/sh","-c","echo hi"]'` });
    }
    return parsed as string[];
  }
  return v ? v.split(/\s+/) : [];
}

/** Builds the config object (see the module comment). `created` is an ISO 8601 time. */
export function imageConfig(root: string, input: ConfigInput, diffIds: string[], created: string): Record<string, unknown> {
  const platform = treePlatform(root, input.arch);
  const env = new Map<string, string>([['PATH', DEFAULT_PATH]]);
  for (const e of input.env ?? []) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new UsageError(`malformed --env \`${e}\``, { hint: 'use --env KEY=VALUE' });
    env.set(e.slice(0, eq), e);
  }
  const shell = ['/bin/bash', '/bin/sh'].find((s) => isExecutableInTree(root, s));
  const config: Record<string, unknown> = { Env: [...env.values()] };
  if (input.entrypoint?.length) config.Entrypoint = input.entrypoint;
  const cmd = input.cmd ?? (input.entrypoint?.length ? undefined : shell ? [shell] : undefined);
  if (cmd?.length) config.Cmd = cmd;
  if (input.workdir) config.WorkingDir = input.workdir;
  if (input.user) config.User = input.user;
  if (input.labels && Object.keys(input.labels).length) config.Labels = Object.fromEntries(Object.entries(input.labels).sort(([a], [b]) => (a < b ? -1 : 1)));
  const comment = describeTree(root);
  return {
    created,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [{ created, created_by: 'nsbox export', ...(comment ? { comment } : {}) }],
  };
}

/** "debian bookworm (minbase)" from nsbox's record, or the tree's os-release PRETTY_NAME. */
function describeTree(root: string): string | undefined {
  try {
    const r = JSON.parse(readTreeFile(root, '/var/lib/nsbox/bootstrap.json') ?? 'null') as { recipe?: { distribution?: string; release?: string; variant?: string } } | null;
    if (r?.recipe?.distribution) return `${r.recipe.distribution} ${r.recipe.release ?? ''}${r.recipe.variant ? ` (${r.recipe.variant})` : ''}`.replace(/\s+/g, ' ').trim();
  } catch { /* not nsbox's */ }
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readTreeFile(root, '/etc/os-release') ?? readTreeFile(root, '/usr/lib/os-release') ?? '')?.[1];
  return pretty || undefined;
}
