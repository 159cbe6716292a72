/**
 * `nsbox export DIR|NAME OUT`: a tree (a directory, or an image on the
 * machine search path) to a tar, squashfs or OCI image
 * (bootstrap/image/export.ts).
 */
import { existsSync, statSync, writeSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { formatBytes } from '../bootstrap/progress.js';
import { parseCommand } from '../bootstrap/image/oci-config.js';
import { findImage, IMAGE_DIRS } from '../runtime/images.js';
import type { ExportResult } from '../bootstrap/image/export.js';
import { withSignals } from './signals.js';
import { markCacheWorthy } from './code-cache.js';

const list = (v: string, prev: string[] = []) => [...prev, v];

export const EXPORT_FORMATS = `
Formats, by the name of OUT:
  FILE.tar, FILE.tar.gz, FILE.tar.xz, FILE.tar.zst   the tree as a tar (as mmdebstrap writes it)
  FILE.squashfs                                       a squashfs image (needs mksquashfs)
  oci:DIR[:TAG]                                       an OCI image layout directory (TAG: latest)
  oci-archive:FILE.tar[:TAG]                          the same in a tar file (podman run oci-archive:FILE)
  -                                                   a plain tar on stdout

With SOURCE_DATE_EPOCH set, the output is reproducible: member times later than it
are written as it, and OCI configs carry it as their creation time.
`;

function exportCommand(): Command {
  return new Command('nsbox export')
    .usage('[options] DIR|NAME OUT')
    .description('Write a tree (a directory, or an image in /var/lib/machines) to a tar, squashfs or OCI image. ' +
      'Every file type, mode, owner, extended attribute and file capability is kept; sockets are left out (as tar leaves them out), ' +
      'and device nodes are left out of OCI layers (the container engine provides /dev).')
    .argument('<tree>', 'tree directory, or the name of an image (nsbox list --all)')
    .argument('<out>', 'output (see Formats)')
    .option('--entrypoint <cmd>', 'OCI: ENTRYPOINT, a JSON array or words (default: none)')
    .option('--cmd <cmd>', 'OCI: CMD, a JSON array or words (default: /bin/bash, else /bin/sh)')
    .option('-e, --env <KEY=VALUE>', 'OCI: environment variable (repeatable; PATH is set by default)', list)
    .option('--workdir <dir>', 'OCI: working directory')
    .option('--user <user>', 'OCI: user the command runs as')
    .option('--label <KEY=VALUE>', 'OCI: label (repeatable)', list)
    .option('--arch <arch>', "OCI: the tree's architecture (default: what the tree says)")
    .addOption(new Option('--layer-compression <kind>', 'OCI: layer compression').choices(['gzip', 'zstd', 'none']).default('gzip'))
    .addOption(new Option('-q, --quiet', 'print errors only').conflicts('json'))
    .addOption(new Option('--json', 'print the result as JSON').conflicts('quiet'))
    .option('--debug', 'show stack traces')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', `${EXPORT_FORMATS}
Examples:
  nsbox export /srv/bookworm bookworm.tar.zst
  nsbox export /srv/bookworm oci-archive:bookworm.tar:12 --cmd /bin/bash
  nsbox export web oci:/srv/images/web:v1 --entrypoint '["/usr/sbin/nginx","-g","daemon off;"]'

Exit status: 0 done, 1 failure, 2 bad usage, 130 interrupted.
`)
    .exitOverride()
    .configureOutput({ writeOut: (s) => writeSync(1, s), writeErr: () => {} });
}

/** A directory as given, or the image of that name. */
export function treeArgument(arg: string): string {
  if (arg.includes('/') || arg === '.' || arg === '..' || (existsSync(arg) && statSync(arg).isDirectory())) return arg;
  const image = findImage(arg);
  if (image) return image;
  throw new UsageError(`cannot export \`${arg}\`: no such directory, and no image of that name`, { hint: `images are looked up in ${IMAGE_DIRS.join(', ')}; a directory needs a path (./${arg})` });
}

/** One line about what was written. */
export function describeExport(tree: string, r: ExportResult): string {
  const s = r.stats;
  const left = s ? [s.skippedSockets && `${s.skippedSockets} socket${s.skippedSockets === 1 ? '' : 's'}`, s.skippedDevices && `${s.skippedDevices} device node${s.skippedDevices === 1 ? '' : 's'}`].filter(Boolean) : [];
  const what = s ? `${s.entries} entries, ${formatBytes(s.bytes)} in ${s.files} files` : 'the tree';
  const out = r.output === '-' ? 'stdout' : r.output;
  return `Exported ${tree} to ${out} (${r.format}, ${formatBytes(r.bytes)}): ${what}${left.length ? `; left out: ${left.join(', ')}` : ''}`;
}

export async function main(argv: string[]): Promise<number> {
  const cmd = exportCommand();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return 0;
      throw new UsageError(err.message.replace(/^error: /, ''), { hint: 'see `nsbox export --help`' });
    }
    throw err;
  }
  const [treeArg, out] = cmd.args;
  const o = cmd.opts<{ entrypoint?: string; cmd?: string; env?: string[]; workdir?: string; user?: string; label?: string[]; arch?: string; layerCompression: 'gzip' | 'zstd' | 'none'; quiet?: boolean; json?: boolean }>();
  const labels: Record<string, string> = {};
  for (const l of o.label ?? []) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new UsageError(`malformed --label \`${l}\``, { hint: 'use --label KEY=VALUE' });
    labels[l.slice(0, eq)] = l.slice(eq + 1);
  }
  const tree = treeArgument(treeArg);
  const { exportTree } = await import('../bootstrap/image/export.js');
  const result = await withSignals((signal) => exportTree(tree, out, {
    entrypoint: o.entrypoint === undefined ? undefined : parseCommand(o.entrypoint, '--entrypoint'),
    cmd: o.cmd === undefined ? undefined : parseCommand(o.cmd, '--cmd'),
    env: o.env, workdir: o.workdir, user: o.user, labels, arch: o.arch, layerCompression: o.layerCompression, signal,
  }));
  markCacheWorthy();
  // a tar on stdout leaves stdout to the tar
  const fd = result.output === '-' ? 2 : 1;
  if (o.json) writeSync(fd, `${JSON.stringify({ type: 'export', tree, ...result })}\n`);
  else if (!o.quiet) writeSync(fd, `${describeExport(tree, result)}\n`);
  return 0;
}
