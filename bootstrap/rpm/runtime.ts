/**
 * rpm's runtime: what nsbox puts into a tree before the tree's own rpm runs
 * there (bootstrap/rpm/engine.ts, step 4), decided from what rpm declares,
 * not from what rpm was seen to open.
 *
 * rpm reads macro files that may run shell expansions (`%(...)`, through
 * /bin/sh and whatever the command names) before it installs anything,
 * dlopens every plugin of its plugin directory (`%{__plugindir}/*.so`, and
 * what each plugin loads or reads in turn), and runs under the tree's
 * loader, libraries, name service and crypto policy. A list of files traced
 * from one repository misses what another rpm build needs (a macro that
 * calls bash, a plugin elsewhere, a plugin's configuration), so the runtime
 * is:
 *
 * - packages: rpm, setup, filesystem, whatever provides /bin/sh, and the
 *   whole closure of their Requires within the resolved set (every
 *   provider of each dependency, every operand of a rich one, pre and post
 *   requirements included): everything rpm's packaging says it may use;
 * - files: every file, symlink and device of those packages, except the
 *   ones rpm itself treats as optional: documentation (%doc, which
 *   `--excludedocs` leaves out) and translations (%lang files, which
 *   `%_install_langs` leaves out). No package may need these to work, rpm
 *   included, and rpm runs here with LC_ALL=C. %license files stay (rpm
 *   installs them even with --excludedocs);
 * - no directory entries: every directory holding something is made as a
 *   parent; rpm creates its database and temporary directories itself
 *   (rpmdbOpen, rpmMkTempFile), and an empty directory and an absent one
 *   read the same to the globs rpm runs over them (macros.d, plugins).
 *   rpm writes every directory with its own mode when it installs its
 *   package.
 */
import { isRich, parseRich, type Dep, type RichDep } from './deps.js';
import type { RpmFileEntry } from './header.js';
import type { RpmPackage } from './primary.js';
import { PackageIndex } from './resolve.js';

/** The packages whose closure is rpm's runtime (with whatever provides /bin/sh). */
const ROOTS = ['rpm', 'setup', 'filesystem'];
/** rpmfileAttrs (rpmfiles.h). */
const RPMFILE_DOC = 1 << 1;

/**
 * The packages the tree's rpm may need before it can run: rpm, setup and
 * filesystem, whatever provides /bin/sh, and everything they require
 * (rich dependencies by all their operands) within the resolved set.
 *
 * @example
 * rpmClosure(resolution.packages).has(bash); // true: it provides /bin/sh
 */
export function rpmClosure(pkgs: RpmPackage[]): Set<RpmPackage> {
  const index = new PackageIndex(pkgs);
  const out = new Set<RpmPackage>();
  const queue = [...pkgs.filter((p) => ROOTS.includes(p.name)), ...index.whatProvides({ name: '/bin/sh' })];
  while (queue.length) {
    const p = queue.shift()!;
    if (out.has(p)) continue;
    out.add(p);
    for (const d of p.requires) {
      if (d.name.startsWith('rpmlib(')) continue;
      for (const leaf of leaves(d)) for (const q of index.whatProvides(leaf)) if (!out.has(q)) queue.push(q);
    }
  }
  return out;
}

/** The simple dependencies of a dependency: itself, or every operand of a rich one. */
function leaves(d: Dep): Dep[] {
  if (!isRich(d.name)) return [d];
  const acc: Dep[] = [];
  const walk = (r: RichDep) => {
    if (r.op === 'dep') acc.push(r.dep);
    else if ('args' in r) r.args.forEach(walk);
    else { walk(r.cond); walk(r.then); if (r.else) walk(r.else); }
  };
  walk(parseRich(d.name));
  return acc;
}

/**
 * Whether a file of a runtime package goes into the runtime: everything but
 * directories, documentation and translations (see the module comment).
 *
 * @example
 * fileEntries(rpm.header).filter(isRuntimeFile); // bash's program and its symlink, not its FAQ (%doc) or bash.mo (%lang)
 */
export function isRuntimeFile(f: Pick<RpmFileEntry, 'mode' | 'flags' | 'lang'>): boolean {
  if ((f.mode & 0o170000) === 0o040000) return false;
  if (f.flags & RPMFILE_DOC) return false;
  return !f.lang || f.lang.split('|').includes('C');
}
