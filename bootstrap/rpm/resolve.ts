/**
 * The RPM dependency resolver: from a pool of repository packages and a list
 * of requests, the set of packages to install — the way dnf (libsolv)
 * picks them for a fresh --installroot, and the order rpm installs them in.
 *
 * Policy, in the order it applies (after libsolv's policy.c):
 * - an already chosen package that satisfies a dependency ends the search;
 * - architectures: the target's own and noarch; 32-bit x86 only when nothing
 *   else provides the dependency (no multilib unless asked);
 * - a package obsoleted by a chosen one is never chosen, nor one obsoleted
 *   by another candidate for the same dependency;
 * - among the remaining names, alphabetical order (libsolv's
 *   prune_to_best_version sorts by name); within a name, the highest EVR
 *   that satisfies the dependency, then the better architecture;
 * - a candidate that conflicts with the chosen set is skipped for the next.
 * Rich dependencies are evaluated against the chosen set until nothing
 * changes, so `(A if B)` follows B wherever B comes from.
 */
import { NsboxError } from '../../errors.js';
import { formatDep, isRich, overlaps, parseRich, type Dep, type RichDep } from './deps.js';
import { nevra, type RpmPackage } from './primary.js';
import { evrcmp } from './vercmp.js';

/** A dependency that cannot be met; the message names the chain. */
export class ResolveError extends NsboxError {
  constructor(message: string, opts: { hint?: string } = {}) {
    super(message, { code: 'unresolvable', ...opts });
  }
}

/** What to resolve. */
export interface ResolveRequest {
  /** Every package of every enabled repository. */
  pool: RpmPackage[];
  /** Package names, provides (`/bin/sh`, `dnf-command(install)`) or `name = evr` relations. */
  install: string[];
  /** Package names (globs with `*`) never to install. */
  exclude?: string[];
  /** Target base architecture, e.g. `x86_64`. */
  arch: string;
  /** Follow Recommends (dnf's install_weak_deps). Default false. */
  withRecommends?: boolean;
  /** Allow secondary-arch packages (i686 on x86_64) beside native ones. Default false. */
  multilib?: boolean;
  /** Names or provides of install-only packages (several versions may be installed). */
  installonly?: string[];
}

/** The resolved set. */
export interface Resolution {
  /** Chosen packages in rpm's install order. */
  packages: RpmPackage[];
  /** Why each package is there: `requested` or `nevra of the requirer: dependency`. */
  reasons: Map<RpmPackage, string>;
  /** Chosen packages that are install-only (kernel*). */
  installonly: Set<RpmPackage>;
}

/** dnf's default installonlypkgs. */
export const DEFAULT_INSTALLONLY = [
  'kernel', 'kernel-PAE', 'installonlypkg(kernel)', 'installonlypkg(kernel-module)', 'installonlypkg(vm)', 'multiversion(kernel)',
];

/** Architectures a base architecture installs, best first, and its secondary (multilib) ones. */
export function archPolicy(arch: string): { native: string[]; secondary: string[] } {
  switch (arch) {
    case 'x86_64': return { native: ['x86_64', 'noarch'], secondary: ['i686', 'i586', 'i486', 'i386'] };
    case 'i686': case 'i386': return { native: ['i686', 'i586', 'i486', 'i386', 'noarch'], secondary: [] };
    case 'aarch64': return { native: ['aarch64', 'noarch'], secondary: [] };
    case 'armhfp': case 'armv7hl': return { native: ['armv7hl', 'armv7hnl', 'noarch'], secondary: [] };
    case 'ppc64le': return { native: ['ppc64le', 'noarch'], secondary: [] };
    case 's390x': return { native: ['s390x', 'noarch'], secondary: [] };
    default: return { native: [arch, 'noarch'], secondary: [] };
  }
}

const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);

/** Provides and file index over a pool. */
export class PackageIndex {
  private readonly byProvide = new Map<string, { pkg: RpmPackage; dep: Dep }[]>();
  private readonly byFile = new Map<string, RpmPackage[]>();
  readonly byName = new Map<string, RpmPackage[]>();

  constructor(readonly pool: RpmPackage[]) {
    for (const pkg of pool) {
      (this.byName.get(pkg.name) ?? this.byName.set(pkg.name, []).get(pkg.name)!).push(pkg);
      const self: Dep = { name: pkg.name, op: 'EQ', evr: pkg.evr };
      const provides = pkg.provides.some((d) => d.name === pkg.name) ? pkg.provides : [self, ...pkg.provides];
      for (const dep of provides) (this.byProvide.get(dep.name) ?? this.byProvide.set(dep.name, []).get(dep.name)!).push({ pkg, dep });
      for (const f of pkg.files) (this.byFile.get(f) ?? this.byFile.set(f, []).get(f)!).push(pkg);
    }
  }

  /**
   * Packages providing a simple dependency (by provide or, for paths, by file).
   *
   * @example
   * index.whatProvides({ name: '/bin/sh' }); // [bash-5.2…]
   */
  whatProvides(dep: Dep): RpmPackage[] {
    const out = new Set<RpmPackage>();
    for (const p of this.byProvide.get(dep.name) ?? []) if (overlaps(p.dep, dep)) out.add(p.pkg);
    if (dep.name.startsWith('/')) for (const p of this.byFile.get(dep.name) ?? []) out.add(p);
    return [...out];
  }

  /** Whether a package provides a simple dependency. */
  provides(pkg: RpmPackage, dep: Dep): boolean {
    if (dep.name === pkg.name && overlaps({ name: pkg.name, op: 'EQ', evr: pkg.evr }, dep)) return true;
    if (pkg.provides.some((p) => p.name === dep.name && overlaps(p, dep))) return true;
    return dep.name.startsWith('/') && pkg.files.includes(dep.name);
  }
}

interface Need { dep: Dep; by?: RpmPackage; weak?: boolean }

/**
 * Resolves a request into the package set and its install order.
 *
 * @example
 * const { packages } = resolve({ pool, install: ['bash', 'rpm', 'dnf', 'fedora-release'], arch: 'x86_64' });
 * packages.map(nevra); // ['filesystem-3.18-…noarch', 'glibc-…', …]
 */
export function resolve(req: ResolveRequest): Resolution {
  const { native, secondary } = archPolicy(req.arch);
  const excluded = (req.exclude ?? []).map(glob);
  const usable = req.pool.filter((p) => (native.includes(p.arch) || secondary.includes(p.arch)) && !excluded.some((g) => g.test(p.name)));
  const index = new PackageIndex(usable);
  const archRank = (a: string) => { const i = native.indexOf(a); return i >= 0 ? i : native.length + secondary.indexOf(a); };

  const chosen = new Map<string, RpmPackage>();
  const reasons = new Map<RpmPackage, string>();
  const richCache = new Map<string, RichDep>();
  const rich = (name: string) => richCache.get(name) ?? richCache.set(name, parseRich(name)).get(name)!;

  const parents = new Map<RpmPackage, RpmPackage | undefined>();
  const chain = (by?: RpmPackage): string => {
    const parts: string[] = [];
    for (let p = by, n = 0; p && n < 30; p = parents.get(p), n++) parts.push(nevra(p));
    return [...parts, 'requested'].join(' ← ');
  };

  const isSatisfied = (dep: Dep): boolean => {
    if (isRich(dep.name)) return evalRich(rich(dep.name));
    for (const p of index.whatProvides(dep)) if (chosen.get(p.name) === p) return true;
    return false;
  };
  const evalRich = (r: RichDep): boolean => {
    switch (r.op) {
      case 'dep': return isSatisfied(r.dep);
      case 'and': return r.args.every(evalRich);
      case 'or': return r.args.some(evalRich);
      case 'with': return candidatesOf(r).some((p) => chosen.get(p.name) === p);
      case 'without': return candidatesOf(r).some((p) => chosen.get(p.name) === p);
      case 'if': return evalRich(r.cond) ? evalRich(r.then) : r.else ? evalRich(r.else) : true;
      case 'unless': return evalRich(r.cond) ? (r.else ? evalRich(r.else) : true) : evalRich(r.then);
    }
  };
  /** Single packages that satisfy a with/without node (or a simple dep). */
  const candidatesOf = (r: RichDep): RpmPackage[] => {
    if (r.op === 'dep') return index.whatProvides(r.dep);
    if (r.op === 'with') return r.args.map(candidatesOf).reduce((a, b) => a.filter((p) => b.includes(p)));
    if (r.op === 'without') { const no = candidatesOf(r.args[1]!); return candidatesOf(r.args[0]!).filter((p) => !no.includes(p)); }
    throw new ResolveError(`cannot use \`${r.op}\` inside \`with\`/\`without\``);
  };

  const conflictWith = (pkg: RpmPackage): string | undefined => {
    for (const q of chosen.values()) {
      for (const c of pkg.conflicts) if (index.provides(q, c)) return `${nevra(pkg)} conflicts with ${nevra(q)} (${formatDep(c)})`;
      for (const c of q.conflicts) if (index.provides(pkg, c)) return `${nevra(q)} conflicts with ${nevra(pkg)} (${formatDep(c)})`;
      // obsoletes match package names only, as rpm does
      for (const o of pkg.obsoletes) if (o.name === q.name && overlaps({ name: q.name, op: 'EQ', evr: q.evr }, o)) return `${nevra(pkg)} obsoletes ${nevra(q)}`;
      for (const o of q.obsoletes) if (o.name === pkg.name && overlaps({ name: pkg.name, op: 'EQ', evr: pkg.evr }, o)) return `${nevra(q)} obsoletes ${nevra(pkg)}`;
    }
    return undefined;
  };

  /** Candidates for a simple dependency, best first. */
  const rank = (cands: RpmPackage[]): RpmPackage[] => {
    const nativeOnes = cands.filter((p) => native.includes(p.arch));
    let pool = nativeOnes.length && !req.multilib ? nativeOnes : cands;
    // a candidate obsoleted by another candidate gives way to it (libsolv's policy_filter_unwanted)
    const kept = pool.filter((p) => !pool.some((q) => q.name !== p.name && q.obsoletes.some((o) => o.name === p.name && overlaps({ name: p.name, op: 'EQ', evr: p.evr }, o))));
    if (kept.length) pool = kept;
    return [...pool].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : evrcmp(b.evr, a.evr) || archRank(a.arch) - archRank(b.arch)));
  };

  const queue: Need[] = [];
  const deferred: Need[] = [];
  let settling = false;
  const add = (pkg: RpmPackage, reason: string, by?: RpmPackage) => {
    chosen.set(pkg.name, pkg);
    reasons.set(pkg, reason);
    parents.set(pkg, by);
    for (const dep of pkg.requires) if (!dep.name.startsWith('rpmlib(')) queue.push({ dep, by: pkg });
    if (req.withRecommends) for (const dep of pkg.recommends) queue.push({ dep, by: pkg, weak: true });
  };

  /** Tries candidates in order; returns the failure reasons when none fits. */
  const tryInstall = (cands: RpmPackage[], reason: string, by?: RpmPackage): string[] | undefined => {
    const why: string[] = [];
    for (const pkg of cands) {
      const have = chosen.get(pkg.name);
      if (have === pkg) return undefined;
      if (have) { why.push(`${nevra(have)} is already chosen instead of ${nevra(pkg)}`); continue; }
      const c = conflictWith(pkg);
      if (c) { why.push(c); continue; }
      add(pkg, reason, by);
      return undefined;
    }
    return why;
  };

  const fulfil = (r: RichDep, need: Need): string[] | undefined => {
    const reason = need.by ? `${nevra(need.by)}: ${formatDep(need.dep)}` : 'requested';
    switch (r.op) {
      case 'dep': {
        if (isSatisfied(r.dep)) return undefined;
        const cands = rank(index.whatProvides(r.dep));
        if (!cands.length) return [`nothing provides \`${formatDep(r.dep)}\``];
        return tryInstall(cands, reason, need.by);
      }
      case 'and': {
        for (const a of r.args) { const f = fulfil(a, need); if (f) return f; }
        return undefined;
      }
      case 'or': {
        if (evalRich(r)) return undefined;
        if (r.args.every((a) => a.op === 'dep')) {
          // libsolv pools the providers of every alternative and applies its usual policy
          const cands = rank([...new Set(r.args.flatMap((a) => index.whatProvides((a as { dep: Dep }).dep)))]);
          if (cands.length) return tryInstall(cands, reason, need.by);
        }
        const why: string[] = [];
        for (const a of r.args) { const f = fulfil(a, need); if (!f) return undefined; why.push(...f); }
        return why;
      }
      case 'with': case 'without': {
        if (evalRich(r)) return undefined;
        const cands = rank(candidatesOf(r));
        if (!cands.length) return [`nothing provides \`${need.dep.name}\``];
        return tryInstall(cands, reason, need.by);
      }
      case 'if': case 'unless':
        // conditions are judged once the plain requirements are in (libsolv decides globally)
        if (!settling) { deferred.push(need); return undefined; }
        if (r.op === 'if') return evalRich(r.cond) ? fulfil(r.then, need) : r.else ? fulfil(r.else, need) : undefined;
        return evalRich(r.cond) ? (r.else ? fulfil(r.else, need) : undefined) : fulfil(r.then, need);
    }
  };

  const process = (need: Need) => {
    const r: RichDep = isRich(need.dep.name) ? rich(need.dep.name) : { op: 'dep', dep: need.dep };
    const failed = fulfil(r, need);
    if (failed && !need.weak) {
      const who = need.by ? `, needed by ${chain(need.by)}` : '';
      throw new ResolveError(`cannot resolve \`${formatDep(need.dep)}\`${who}: ${failed.join('; ')}`, {
        hint: 'the repositories lack a package, or --exclude removed it',
      });
    }
  };

  for (const spec of req.install) {
    const m = /^(\S+)\s*(<=|>=|=|<|>)\s*(\S+)$/.exec(spec);
    const dep: Dep = m ? { name: m[1]!, op: ({ '<': 'LT', '<=': 'LE', '=': 'EQ', '>=': 'GE', '>': 'GT' } as const)[m[2] as '<'], evr: parseSpecEvr(m[3]!) } : { name: spec };
    // a request by name whose package is obsoleted by another name installs the obsoleter, as dnf does
    const obsoleter = !m && index.byName.has(spec) ? usable.find((p) => p.name !== spec && p.obsoletes.some((o) => o.name === spec && index.byName.get(spec)!.some((q) => overlaps({ name: q.name, op: 'EQ', evr: q.evr }, o)))) : undefined;
    const target: Dep = obsoleter ? { name: obsoleter.name } : dep;
    if (!index.byName.has(target.name) && !index.whatProvides(target).length) {
      throw new ResolveError(`cannot find package \`${spec}\` in the repositories`, { hint: 'check the name, --release and --exclude' });
    }
    // by name first: `rpm` means the package rpm, not whatever else provides "rpm"
    const named = index.byName.get(target.name)?.filter((p) => overlaps({ name: p.name, op: 'EQ', evr: p.evr }, target));
    if (named?.length && !chosen.has(target.name)) {
      const failed = tryInstall(rank(named), 'requested');
      if (failed) throw new ResolveError(`cannot install \`${spec}\`: ${failed.join('; ')}`);
    } else {
      queue.push({ dep: target });
    }
  }

  // drain plain requirements, then settle the deferred conditionals, then re-check
  // every rich dependency (a condition may have turned true late) until nothing changes
  const drain = () => { while (queue.length) process(queue.shift()!); };
  for (let round = 0; round < 1000; round++) {
    drain();
    if (deferred.length) {
      settling = true;
      for (const need of deferred.splice(0)) process(need);
      settling = false;
      continue;
    }
    const before = chosen.size;
    for (const pkg of chosen.values()) {
      for (const dep of pkg.requires) if (isRich(dep.name) && !evalRich(rich(dep.name))) queue.push({ dep, by: pkg });
      if (req.withRecommends) for (const dep of pkg.recommends) if (isRich(dep.name) && !evalRich(rich(dep.name))) queue.push({ dep, by: pkg, weak: true });
    }
    if (!queue.length) break;
    settling = true;
    drain();
    settling = false;
    if (chosen.size === before) break;
  }

  const set = [...chosen.values()];
  const only = new Set<RpmPackage>();
  const installonly = req.installonly ?? DEFAULT_INSTALLONLY;
  for (const p of set) if (installonly.some((n) => n === p.name || p.provides.some((d) => d.name === n))) only.add(p);
  return { packages: installOrder(set, index), reasons, installonly: only };
}

function parseSpecEvr(s: string) {
  const colon = s.indexOf(':');
  const epoch = colon > 0 ? Number(s.slice(0, colon)) : 0;
  const rest = colon > 0 ? s.slice(colon + 1) : s;
  const dash = rest.lastIndexOf('-');
  return dash < 0 ? { epoch, version: rest } : { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
}

/**
 * Orders packages for installation the way rpm's transaction does: a
 * package after what it requires; inside a dependency loop, Requires(pre)
 * edges are kept and plain Requires dropped (rpm's tsort breaks loops at
 * non-prerequisite edges); ties by name.
 *
 * @example
 * installOrder(resolution.packages).map((p) => p.name); // ['filesystem', 'glibc', 'bash', …]
 */
export function installOrder(pkgs: RpmPackage[], index = new PackageIndex(pkgs)): RpmPackage[] {
  const inSet = new Set(pkgs);
  const sorted = [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // edges: p -> q means q must come before p
  const edges = new Map<RpmPackage, { to: RpmPackage; pre: boolean }[]>();
  for (const p of sorted) {
    const out: { to: RpmPackage; pre: boolean }[] = [];
    for (const dep of p.requires) {
      const leaves = isRich(dep.name) ? richDeps(dep.name) : [dep];
      for (const leaf of leaves) {
        for (const q of index.whatProvides(leaf)) if (q !== p && inSet.has(q)) out.push({ to: q, pre: !!dep.pre });
      }
    }
    edges.set(p, out);
  }
  // Tarjan's strongly connected components, emitted dependencies-first
  const idx = new Map<RpmPackage, number>();
  const low = new Map<RpmPackage, number>();
  const stack: RpmPackage[] = [];
  const onStack = new Set<RpmPackage>();
  const order: RpmPackage[] = [];
  let counter = 0;
  const strong = (v: RpmPackage) => {
    idx.set(v, counter); low.set(v, counter); counter++;
    stack.push(v); onStack.add(v);
    for (const { to } of edges.get(v)!) {
      if (!idx.has(to)) { strong(to); low.set(v, Math.min(low.get(v)!, low.get(to)!)); }
      else if (onStack.has(to)) low.set(v, Math.min(low.get(v)!, idx.get(to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: RpmPackage[] = [];
      let w: RpmPackage;
      do { w = stack.pop()!; onStack.delete(w); comp.push(w); } while (w !== v);
      order.push(...orderLoop(comp, edges));
    }
  };
  for (const p of sorted) if (!idx.has(p)) strong(p);
  return order;
}

/** Inside a loop: keep only Requires(pre) edges, then a stable topological order by name. */
function orderLoop(comp: RpmPackage[], edges: Map<RpmPackage, { to: RpmPackage; pre: boolean }[]>): RpmPackage[] {
  if (comp.length === 1) return comp;
  const members = new Set(comp);
  const pending = [...comp].sort((a, b) => (a.name < b.name ? -1 : 1));
  const done = new Set<RpmPackage>();
  const out: RpmPackage[] = [];
  while (pending.length) {
    let i = pending.findIndex((p) => edges.get(p)!.every((e) => !e.pre || !members.has(e.to) || done.has(e.to) || e.to === p));
    if (i < 0) i = 0; // a loop of prerequisites: rpm warns and picks one too
    const [p] = pending.splice(i, 1);
    done.add(p!);
    out.push(p!);
  }
  return out;
}

function richDeps(name: string): Dep[] {
  const leaves: Dep[] = [];
  const walk = (r: RichDep) => {
    if (r.op === 'dep') leaves.push(r.dep);
    else if ('args' in r) r.args.forEach(walk);
    else { walk(r.then); if (r.else) walk(r.else); }
  };
  walk(parseRich(name));
  return leaves;
}
