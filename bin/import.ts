/**
 * `nsbox import FILE|oci:DIR[:TAG]|oci-archive:FILE[:TAG] [NAME]`: a tar or
 * OCI image into /var/lib/machines/NAME (bootstrap/image/import.ts), where
 * `nsbox run -M NAME` finds it.
 */
import { writeSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { SetupError, UsageError } from '../errors.js';
import { join } from 'node:path';
import { IMPORT_DIR } from '../runtime/images.js';
import * as registry from '../runtime/registry.js';
import { withSignals } from './signals.js';
import { markCacheWorthy } from './code-cache.js';

function importCommand(): Command {
  return new Command('nsbox import')
    .usage('[options] FILE|oci:DIR[:TAG]|oci-archive:FILE[:TAG] [NAME]')
    .description('Unpack a tar (plain, gzip, xz or zstd; "-" reads stdin) or an OCI image (its layers in order, whiteouts applied, ' +
      'every blob checked against its digest) into /var/lib/machines/NAME, as machinectl import-tar does. NAME defaults to the ' +
      'file name without its extensions. Paths that leave the tree and absolute paths are refused, and nothing is written through ' +
      'a symlink from the archive; the image appears only when complete.')
    .argument('<source>', 'tar file, -, oci:DIR[:TAG] or oci-archive:FILE[:TAG] (a plain name ending in .tar that holds an OCI layout works too)')
    .argument('[name]', 'image name (letters, digits, "-", "_", ".")')
    .option('--force', 'replace an existing image of that name')
    .addOption(new Option('-q, --quiet', 'print errors only').conflicts('json'))
    .addOption(new Option('--json', 'print the result as JSON').conflicts('quiet'))
    .option('--debug', 'show stack traces')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', `
Examples:
  nsbox import bookworm.tar.zst bookworm && nsbox run -M bookworm -- cat /etc/os-release
  nsbox import oci-archive:web.tar:v1 web
  skopeo copy docker://docker.io/library/debian:12 oci:/tmp/debian:12 && nsbox import oci:/tmp/debian:12 debian12

Exit status: 0 done, 1 failure, 2 bad usage, 5 damaged or hostile image, 130 interrupted.
`)
    .exitOverride()
    .configureOutput({ writeOut: (s) => writeSync(1, s), writeErr: () => {} });
}

export async function main(argv: string[]): Promise<number> {
  const cmd = importCommand();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return 0;
      throw new UsageError(err.message.replace(/^error: /, ''), { hint: 'see `nsbox import --help`' });
    }
    throw err;
  }
  const [source, name] = cmd.args;
  const o = cmd.opts<{ force?: boolean; quiet?: boolean; json?: boolean }>();
  if (process.getuid?.() !== 0) throw new SetupError('cannot import: nsbox import needs root (it writes /var/lib/machines and sets file owners)', { hint: 'run it with sudo' });
  const { importImage } = await import('../bootstrap/image/import.js');
  const { imageNameFrom, parseSource, checkImageName } = await import('../bootstrap/image/spec.js');
  const src = parseSource(source);
  const target = name ?? imageNameFrom(src);
  if (target && o.force) {
    const running = registry.list().find((m) => m.directory === join(IMPORT_DIR, target));
    if (running) throw new UsageError(`cannot replace image \`${checkImageName(target)}\`: it is running as machine \`${running.name}\``, { hint: `stop it first: nsbox stop ${running.name}` });
  }
  const result = await withSignals((signal) => importImage(src, name, { force: o.force, signal, warn: (m) => writeSync(2, `nsbox: warning: ${m}\n`) }));
  markCacheWorthy();
  if (o.json) writeSync(1, `${JSON.stringify({ type: 'import', ...result })}\n`);
  else if (!o.quiet) {
    writeSync(1, `Imported ${source} as ${result.name} in ${result.path}: ${result.entries} entries${result.layers !== undefined ? ` from ${result.layers} layer${result.layers === 1 ? '' : 's'}` : ''}\n`);
    writeSync(1, `Run it with: nsbox run -M ${result.name} [COMMAND]\n`);
  }
  return 0;
}
