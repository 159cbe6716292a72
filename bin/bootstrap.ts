/**
 * `nsbox bootstrap DISTRO|RECIPE DIR [options]`: flags → Recipe
 * (`recipeFromFlags`, reused by the wizard), then the library's
 * `bootstrap()` with a progress renderer, Ctrl-C/SIGTERM as an AbortSignal,
 * and one summary line at the end.
 */
import { existsSync, mkdtempSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { AbortedError, UsageError } from '../errors.js';
import type { BootstrapResult, Recipe } from '../bootstrap/recipe.js';
import { addPostFlags, answersFromFlags, applyAnswers, checkAnswers, requireAnswers, startCommand, type Answers } from './post-flags.js';
import { isatty } from '../runtime/isatty.js';
import type { OutputTarget } from '../bootstrap/image/spec.js';
import { withSignals } from './signals.js';
import { markCacheWorthy } from './code-cache.js';

/** The flags as commander hands them over (`--no-verify` → verify: false). */
export interface BootstrapFlags extends Record<string, unknown> {
  release?: string;
  variant?: string;
  arch?: string;
  mirror?: string;
  /** Fedora: metalink URL template ($repo, $basearch) instead of --mirror. */
  metalink?: string;
  /** Fedora: install weak dependencies (Recommends) too. */
  withRecommends?: boolean;
  components?: string[];
  include?: string[];
  exclude?: string[];
  keyring?: string;
  verify?: boolean;
  updates?: boolean;
  ignoreValidUntil?: boolean;
  cacheDir?: string;
  /** Export the finished tree there (bootstrap/image/spec.ts names). */
  output?: string;
  stageCache?: boolean;
  force?: boolean;
  yes?: boolean;
  quiet?: boolean;
  json?: boolean;
  debug?: boolean;
}

const list = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** The command definition (also what `--help` prints). */
export function bootstrapCommand(): Command {
  const cmd = new Command('nsbox bootstrap')
    .usage('DISTRO|RECIPE DIR [options]')
    .description(
      'Build a distribution tree in DIR: verified repository index, resolved package set, verified downloads ' +
        "(cached), the tree's own package manager installing them. DISTRO is debian or fedora, or a recipe " +
        'file (./name.recipe.mjs) whose default export is a recipe; flags override its fields.',
    )
    .argument('<distro>', 'debian, fedora, or a recipe file path')
    .argument('[dir]', 'target directory (created; an interrupted nsbox bootstrap there is started over); with --output it may be left out: the tree is then built in a temporary directory beside OUT and removed after the export')
    .option('-r, --release <suite>', 'release codename or alias (debian: trixie, bookworm, forky, sid, stable, oldstable, testing, unstable; default: current stable); fedora: N or rawhide (default: the newest release)')
    .option('--variant <variant>', 'package selection: minbase, important, boot, buildd (debian, default: minbase); minimal, boot (fedora, default: minimal)')
    .option('--arch <arch>', "distribution architecture (default: the host's, e.g. amd64)")
    .option('--mirror <url>', "archive URL, e.g. http://<mirror>/debian (default: the host's apt configuration)")
    .option('--metalink <url>', 'fedora: metalink URL template instead of a mirror ($repo and $basearch are filled in; default: Fedora\'s)')
    .option('--with-recommends', 'fedora: install weak dependencies (Recommends) too, as dnf does by default')
    .option('--components <list>', 'archive components, comma-separated (default: main)', list)
    .option('--include <pkgs>', 'extra packages, comma-separated (repeatable)', list)
    .option('--exclude <pkgs>', 'packages never to install, comma-separated (repeatable)', list)
    .option('--keyring <file>', 'OpenPGP keyring to trust instead of the bundled archive keys')
    .option('--no-verify', 'skip signature checks (DANGEROUS: anyone on the network path can change the tree)')
    .option('--no-updates', 'leave out the -updates and -security suites of stable releases')
    .option('--ignore-valid-until', 'accept a Release file past its Valid-Until date (stale mirrors, snapshots)')
    .option('--output <out>', 'also write the finished tree to OUT, by its name: *.tar, *.tar.gz, *.tar.xz, *.tar.zst, *.squashfs, oci:DIR[:TAG] or oci-archive:FILE.tar[:TAG] (see nsbox export --help; reproducible with SOURCE_DATE_EPOCH)')
    .option('--cache-dir <dir>', 'download cache (default: /var/cache/nsbox)')
    .option('--no-stage-cache', "neither reuse nor keep cached stages (debian: the essential set as installed by dpkg; fedora: the files the tree's rpm needs to run)")
    .option('--force', 'write into a non-empty directory nsbox did not create, or over a finished tree')
    .option('-y, --yes', 'never ask: fail instead of prompting for missing choices')
    .addOption(new Option('-q, --quiet', 'print errors only').conflicts('json'))
    .addOption(new Option('--json', 'print progress events and the result as JSON lines on stdout').conflicts('quiet'))
    .option('--debug', 'show stack traces and debug messages')
    .helpOption('-h, --help', 'show this help');
  return addPostFlags(cmd)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  nsbox bootstrap debian /srv/trixie\n' +
        '  nsbox bootstrap debian /srv/bookworm --release bookworm --variant boot --include openssh-server\n' +
        '  nsbox bootstrap fedora /srv/f40 --release 40 --variant boot\n' +
        '  nsbox bootstrap ./web.recipe.mjs /srv/web --yes\n' +
        '  SOURCE_DATE_EPOCH=$(date -d 2025-01-01 +%s) nsbox bootstrap debian --release bookworm --output oci-archive:bookworm.tar:12\n' +
        '\nExit status: 0 done, 1 failure, 2 bad usage, 4 network, 5 signature or checksum, 130 interrupted.\n',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => writeSync(1, s), writeErr: () => {} });
}

/**
 * The one place flags become a Recipe. A recipe file's fields are the base;
 * only flags that were given override them, so a caller (the wizard) can
 * tell which choices are still missing. Post-step flags (--hostname, --ssh,
 * --user, …) become post steps through bin/post-flags.ts.
 *
 * @example
 * await recipeFromFlags('debian', { release: 'bookworm', include: ['curl'] })
 * // → { distribution: 'debian', release: 'bookworm', include: ['curl'] }
 */
export async function recipeFromFlags(distro: string, flags: BootstrapFlags, answers: Answers = answersFromFlags(flags)): Promise<Recipe> {
  const base = await baseRecipe(distro);
  checkAnswers(answers);
  const r: Recipe = { ...base };
  if (flags.release !== undefined) r.release = flags.release;
  if (flags.variant !== undefined) r.variant = flags.variant;
  if (flags.arch !== undefined) r.arch = flags.arch;
  if (flags.mirror !== undefined) r.mirror = flags.mirror;
  if (flags.metalink !== undefined) r.metalink = flags.metalink;
  if (flags.withRecommends) r.withRecommends = true;
  if (flags.components?.length) r.components = flags.components;
  if (flags.include?.length) r.include = [...(base.include ?? []), ...flags.include];
  if (flags.exclude?.length) r.exclude = [...(base.exclude ?? []), ...flags.exclude];
  if (flags.keyring !== undefined) r.keyring = flags.keyring;
  if (flags.verify === false) r.noVerify = true;
  if (flags.updates === false) r.updates = false;
  return applyAnswers(r, answers);
}

async function baseRecipe(distro: string): Promise<Recipe> {
  if (distro === 'debian' || distro === 'fedora') return { distribution: distro };
  const { isRecipePath, loadRecipeFile } = await import('../recipes/load.js');
  if (!isRecipePath(distro)) throw new UsageError(`unknown distribution \`${distro}\``, { hint: 'use debian, fedora, or a recipe file such as ./web.recipe.mjs' });
  return loadRecipeFile(distro);
}

/** `nsbox bootstrap …`; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const cmd = bootstrapCommand();
  let distro: string;
  let dir: string | undefined;
  let flags: BootstrapFlags;
  try {
    cmd.parse(argv, { from: 'user' });
    [distro, dir] = cmd.args;
    flags = cmd.opts<BootstrapFlags>();
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return 0;
      throw new UsageError(err.message.replace(/^error: /, ''), { hint: 'see `nsbox bootstrap --help`' });
    }
    throw err;
  }
  // --output is checked (format, its directory) before anything is downloaded
  const output = flags.output === undefined ? undefined : (await import('../bootstrap/image/spec.js')).parseOutput(flags.output);
  if (dir === undefined) {
    if (!output) throw new UsageError('missing the target directory DIR', { hint: 'nsbox bootstrap DISTRO DIR, or nsbox bootstrap DISTRO --output OUT' });
    if (output.path !== '-' && !existsSync(dirname(output.path))) throw new UsageError(`cannot write \`${output.path}\`: directory \`${dirname(output.path)}\` does not exist`);
  }
  // Without DIR, a temporary tree beside OUT, named after it (its hostname comes from that name).
  const scratch = dir === undefined ? mkdtempSync(join(output!.path === '-' ? tmpdir() : dirname(output!.path), '.nsbox-bootstrap-')) : undefined;
  if (scratch) dir = join(scratch, treeNameFor(output!.path));
  try {
    return await bootstrapTo(distro, dir!, flags, output, !scratch);
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

/** The temporary tree's name: OUT's base name without extensions and tag (`bookworm.tar.zst` → `bookworm`). */
function treeNameFor(path: string): string {
  return basename(path).replace(/(\.(tar|tgz|txz|tzst|gz|xz|zst|zstd|squashfs|sqfs|oci))+$/, '') || 'tree';
}

async function bootstrapTo(distro: string, dir: string, flags: BootstrapFlags, output: OutputTarget | undefined, keep: boolean): Promise<number> {
  // a tar on stdout owns stdout: progress and summaries go to stderr, or nowhere
  const out = output?.path === '-' ? 2 : 1;
  if (out === 2 && flags.json) throw new UsageError('cannot combine --json with --output -: both write to stdout', { hint: 'write the tar to a file, or leave out --json' });
  let answers = answersFromFlags(flags);
  checkAnswers(answers);
  if (!flags.yes && !flags.json && isatty(0) && isatty(1)) {
    // On a terminal the wizard asks what the flags left open (Ctrl-C: "cancelled", 130, nothing written).
    const { runWizard } = await import('./wizard.js');
    answers = await runWizard(await recipeFromFlags(distro, flags, {}), resolve(dir), answers);
  } else {
    // Without a terminal (or with --yes) nothing can be asked: what is required must be given.
    requireAnswers(answers);
  }
  const recipe = await recipeFromFlags(distro, flags, answers);
  if (recipe.noVerify) {
    writeSync(2, 'nsbox: WARNING: --no-verify: signatures are NOT checked. Anyone between you and the mirror can change what this tree runs.\n');
  }

  const { prepareBootstrap } = await import('../bootstrap/index.js');
  const { createRenderer, formatBytes } = await import('../bootstrap/progress.js');
  const ac = new AbortController();
  // Bad input fails here, as one line, before any task list is drawn.
  const job = await prepareBootstrap(recipe, dir, {
    cacheDir: flags.cacheDir, force: flags.force, ignoreValidUntil: flags.ignoreValidUntil, stageCache: flags.stageCache !== false, signal: ac.signal,
  });
  const renderer = await createRenderer(flags.json ? 'json' : flags.quiet || out === 2 ? 'quiet' : 'tasks', { verbose: !!flags.debug });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      writeSync(2, `nsbox: ${sig} again: exiting now; \`${resolve(dir)}\` stays marked incomplete\n`);
      process.exit(130);
    }
    ac.abort(new AbortedError(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // Node exits with status 0 when nothing is left to wait for; a bootstrap that stalls must not look finished.
  const stalled = () => {
    writeSync(2, `nsbox: internal error: the bootstrap stopped making progress; \`${resolve(dir)}\` stays marked incomplete (rerun with --debug)\n`);
    process.exit(1);
  };
  process.once('beforeExit', stalled);
  const started = Date.now();
  let result: BootstrapResult;
  try {
    result = await job.run({ onProgress: renderer.emit });
    await renderer.close();
  } catch (err) {
    await renderer.close(err);
    throw err;
  } finally {
    process.off('beforeExit', stalled);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
  const seconds = (Date.now() - started) / 1000;
  markCacheWorthy();
  if (flags.json) {
    writeSync(1, `${JSON.stringify({ type: 'result', ...result, seconds })}\n`);
  } else if (!flags.quiet) {
    const n = Object.keys(result.packages).length;
    writeSync(
      out,
      `Bootstrapped ${result.distribution} ${result.release} (${result.variant}, ${result.arch}) in ${result.dir}: ${n} packages; ` +
        `downloaded ${formatBytes(result.downloadedBytes)} in ${result.downloadedFiles} files, ${result.cachedFiles} files from the cache; ${seconds.toFixed(1)} s\n`,
    );
    if (keep) writeSync(out, `Start it with: ${startCommand(result.dir, { ...recipe, variant: result.variant })}\n`);
  }
  if (output) {
    const { exportTree } = await import('../bootstrap/image/export.js');
    const { describeExport } = await import('./export.js');
    const exported = await withSignals((signal) => exportTree(result.dir, output, { signal }));
    if (flags.json) writeSync(1, `${JSON.stringify({ type: 'export', tree: result.dir, ...exported })}\n`);
    else if (!flags.quiet) writeSync(out, `${describeExport(keep ? result.dir : 'the new tree', exported)}\n`);
  }
  return 0;
}
