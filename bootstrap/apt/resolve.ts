/**
 * The bootstrap resolver: from a selection rule (priorities, Essential,
 * named packages) to a closed, conflict-free package set.
 *
 * Follows what debootstrap's `work_out_debs`/`resolve_deps` and apt do for a
 * fresh tree, with apt's better handling of alternatives:
 * - the initial set is selected first, so an alternative that is already in
 *   the set (or provided by it) satisfies a clause;
 * - otherwise the first alternative with an installable candidate is taken
 *   (debootstrap only ever takes the first one);
 * - a virtual name goes to a provider already chosen, else the only
 *   provider, else the provider with the highest Priority, then by name;
 * - candidates that Conflict with or Break the selection (or are broken by
 *   it) are skipped while choosing; a conflict that remains is an error;
 * - Recommends are not followed (neither debootstrap nor mmdebstrap do).
 * Breadth-first, with sorted inputs, so the result is deterministic.
 */
import { NsboxError, UsageError } from '../../errors.js';
import { appliesTo, formatAlternatives, formatRelation, type Relation } from './relations.js';
import { provides, relations, type PackageInfo, type Universe } from './universe.js';
import { satisfies } from './version.js';

/** Which packages a variant starts from (plain data from the recipe). */
export interface SelectionRule {
  /** Every candidate with one of these priorities (`required`, `important`, …). */
  priorities?: string[];
  /** Every candidate marked `Essential: yes`. */
  essential?: boolean;
  /** Named packages (real or virtual). */
  packages?: string[];
}

/** Resolver input. */
export interface ResolveRequest {
  rule: SelectionRule;
  /** Extra packages (`--include`); unknown names are a UsageError. */
  include?: string[];
  /** Packages never to select (`--exclude`); dependencies only on them are dropped with a warning. */
  exclude?: string[];
  /** Follow Recommends too (default false). */
  recommends?: boolean;
}

/** Resolver output. */
export interface Resolution {
  /** The package set, sorted by name. */
  packages: PackageInfo[];
  /** Why each package is in the set: `rule`, `include`, or the chain `apt -> libc6 (>= 2.36)`. */
  reasons: Map<string, string>;
  /** Things worth telling the user (dropped dependencies). */
  warnings: string[];
}

/** An unsatisfiable request; the message names the dependency chain. */
export class ResolveError extends NsboxError {
  constructor(message: string, opts: { hint?: string } = {}) {
    super(message, { ...opts, code: 'resolve' });
  }
}

const PRIORITY_RANK: Record<string, number> = { required: 0, important: 1, standard: 2, optional: 3, extra: 4 };

const byName = (a: PackageInfo, b: PackageInfo) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Whether `pkg` can satisfy `rel`'s arch qualifier in a single-arch tree. */
function archOk(rel: Relation, pkg: PackageInfo, arch: string): boolean {
  const q = rel.archQualifier;
  if (!q || q === 'native') return true;
  if (q === 'any') return pkg.multiArch === 'allowed' || pkg.multiArch === 'foreign';
  return q === arch && (pkg.arch === arch || pkg.arch === 'all');
}

/** Whether a real package (not a provider) matches one term. */
function matchesReal(rel: Relation, pkg: PackageInfo, arch: string): boolean {
  return pkg.name === rel.name && archOk(rel, pkg, arch) && (!rel.op || satisfies(pkg.version, rel.op, rel.version!));
}

/** Whether `pkg` matches a term directly or through its Provides. */
export function matches(rel: Relation, pkg: PackageInfo, arch: string): boolean {
  if (matchesReal(rel, pkg, arch)) return true;
  if (!pkg.fields.Provides || !archOk(rel, pkg, arch)) return false;
  return provides(pkg).some((p) => p.name === rel.name && (!rel.op || (p.version !== undefined && satisfies(p.version, rel.op, rel.version!))));
}

/** The candidates (real first, then providers) that satisfy one term. */
export function candidates(u: Universe, rel: Relation): PackageInfo[] {
  const out: PackageInfo[] = [];
  const real = u.get(rel.name);
  if (real && matchesReal(rel, real, u.arch)) out.push(real);
  const provs = u
    .providers(rel.name)
    .filter((p) => p.pkg !== real && archOk(rel, p.pkg, u.arch) && (!rel.op || (p.version !== undefined && satisfies(p.version, rel.op, rel.version!))))
    .map((p) => p.pkg)
    .sort((a, b) => (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) || byName(a, b));
  return out.concat(provs);
}

/** Whether `a` Conflicts with or Breaks `b`. */
export function conflictsWith(a: PackageInfo, b: PackageInfo, arch: string): Relation | undefined {
  if (a === b || a.name === b.name) return undefined;
  for (const field of ['Conflicts', 'Breaks'] as const) {
    if (!a.fields[field]) continue;
    for (const clause of relations(a, field)) {
      for (const rel of clause) if (appliesTo(rel, arch) && matches(rel, b, arch)) return rel;
    }
  }
  return undefined;
}

/**
 * The packages a rule selects before dependencies, sorted by name.
 *
 * @example
 * initialNames(u, { priorities: ['required'], essential: true, packages: ['apt'] })
 */
export function initialNames(u: Universe, rule: SelectionRule): string[] {
  const names = new Set<string>(rule.packages ?? []);
  const prios = new Set(rule.priorities ?? []);
  for (const p of u.all()) if (prios.has(p.priority) || (rule.essential && p.essential)) names.add(p.name);
  return [...names].sort();
}

/**
 * Resolves a selection to a closed package set.
 *
 * @example
 * const r = resolve(universe, { rule: { priorities: ['required'], essential: true, packages: ['apt'] }, include: ['systemd-sysv'] });
 * r.packages.map((p) => p.name) // ['adduser', 'apt', 'base-files', …]
 * // throws ResolveError('cannot resolve dependencies: foo -> bar (>= 2) -> baz: no installable candidate')
 */
export function resolve(u: Universe, req: ResolveRequest): Resolution {
  const arch = u.arch;
  const excluded = new Set(req.exclude ?? []);
  const chosen = new Map<string, PackageInfo>();
  const reasons = new Map<string, string>();
  const warnings: string[] = [];
  const queue: PackageInfo[] = [];

  const conflictOf = (c: PackageInfo): string | undefined => {
    for (const s of chosen.values()) {
      const r = conflictsWith(c, s, arch) ?? conflictsWith(s, c, arch);
      if (r) return `${c.name} conflicts with ${s.name}`;
    }
    return undefined;
  };
  const add = (p: PackageInfo, reason: string) => {
    chosen.set(p.name, p);
    reasons.set(p.name, reason);
    queue.push(p);
  };
  const satisfiedByChosen = (rel: Relation): boolean => {
    const real = chosen.get(rel.name);
    if (real && matches(rel, real, arch)) return true;
    return u.providers(rel.name).some((p) => chosen.get(p.pkg.name) === p.pkg && matches(rel, p.pkg, arch));
  };

  // 1. The initial selection: rule, then --include. Named ones may be virtual.
  const named = new Set([...(req.rule.packages ?? []), ...(req.include ?? [])]);
  const start = [...new Set([...initialNames(u, req.rule), ...(req.include ?? [])])].filter((n) => !excluded.has(n));
  const virtuals: string[] = [];
  for (const name of start) {
    const p = u.get(name);
    if (p) add(p, (req.include ?? []).includes(name) && !(req.rule.packages ?? []).includes(name) ? 'include' : 'rule');
    else if (u.providers(name).length) virtuals.push(name);
    else if (named.has(name)) {
      throw new UsageError(`cannot find package \`${name}\` in the selected suites and components`, {
        hint: 'check the name, the release and --components',
      });
    }
  }
  for (const name of virtuals) {
    const rel: Relation = { name };
    if (satisfiedByChosen(rel)) continue;
    const c = candidates(u, rel).find((p) => !excluded.has(p.name) && !conflictOf(p));
    if (!c) throw new ResolveError(`cannot resolve dependencies: ${name}: no installable provider`);
    add(c, `${name} (provided)`);
  }

  // 2. Dependencies, breadth-first.
  for (let qi = 0; qi < queue.length; qi++) {
    const p = queue[qi];
    const clauses = [...relations(p, 'Pre-Depends'), ...relations(p, 'Depends')];
    if (req.recommends) clauses.push(...relations(p, 'Recommends'));
    for (const clause of clauses) {
      const alts = clause.filter((r) => appliesTo(r, arch));
      if (!alts.length || alts.some(satisfiedByChosen)) continue;
      const usable = alts.filter((r) => !excluded.has(r.name));
      if (!usable.length) {
        warnings.push(`dropped dependency ${p.name} -> ${formatAlternatives(alts)} (excluded)`);
        continue;
      }
      let pick: { pkg: PackageInfo; rel: Relation } | undefined;
      const why: string[] = [];
      for (const rel of usable) {
        for (const c of candidates(u, rel)) {
          if (excluded.has(c.name)) continue;
          const conflict = conflictOf(c);
          if (conflict) {
            why.push(conflict);
            continue;
          }
          pick = { pkg: c, rel };
          break;
        }
        if (pick) break;
        if (!why.length || !why[why.length - 1].startsWith(rel.name)) why.push(explain(u, rel));
      }
      if (!pick) {
        const chain = [...chainOf(p, reasons), formatAlternatives(alts)].join(' -> ');
        throw new ResolveError(`cannot resolve dependencies: ${chain}: no installable candidate`, { hint: why.join('; ') });
      }
      add(pick.pkg, `${reasons.get(p.name)?.includes(' -> ') ? reasons.get(p.name) : p.name} -> ${formatRelation(pick.rel)}`);
    }
  }

  // 3. The rule's own picks may conflict with each other: that is an error.
  const list = [...chosen.values()].sort(byName);
  for (const a of list) {
    for (const b of list) {
      const rel = conflictsWith(a, b, arch);
      if (rel) {
        throw new ResolveError(`cannot resolve dependencies: ${a.name} conflicts with ${b.name} (${formatRelation(rel)})`, {
          hint: `${a.name} is there because of: ${reasons.get(a.name)}; ${b.name}: ${reasons.get(b.name)}; use --exclude to drop one`,
        });
      }
    }
  }
  return { packages: list, reasons, warnings };
}

/** The chain of relations that brought `p` in, from its root. */
function chainOf(p: PackageInfo, reasons: Map<string, string>): string[] {
  const r = reasons.get(p.name) ?? '';
  return r.includes(' -> ') ? r.split(' -> ') : [p.name];
}

/** Why no candidate satisfies a term (for the hint). */
function explain(u: Universe, rel: Relation): string {
  const real = u.get(rel.name);
  if (real) return `${rel.name} ${real.version} does not satisfy ${formatRelation(rel)}`;
  const provs = u.providers(rel.name);
  if (provs.length) return `no provider of ${rel.name} satisfies ${formatRelation(rel)} (${provs.map((p) => p.pkg.name).join(', ')})`;
  return `${rel.name} is not in the archive`;
}
