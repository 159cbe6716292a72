/**
 * Install order for a bootstrap, the way debootstrap and mmdebstrap do it:
 * first the essential set (Essential: yes packages and everything they
 * depend on), which is unpacked raw and then installed with dpkg; then the
 * rest. Within each phase a package comes after what it Pre-Depends on and,
 * where no cycle forbids it, after what it Depends on. Cycles (there are
 * always some: libc6 ↔ libgcc-s1, perl-base ↔ …) are broken
 * deterministically: inside a strongly connected component only Pre-Depends
 * edges order, then names.
 */
import { appliesTo } from './relations.js';
import { matches } from './resolve.js';
import { relations, type PackageInfo } from './universe.js';

/** The two install phases, each in install order. */
export interface InstallOrder {
  essential: PackageInfo[];
  rest: PackageInfo[];
}

interface Edges {
  /** name → names it depends on (Depends + Pre-Depends), within the set. */
  deps: Map<string, string[]>;
  /** name → names it pre-depends on, within the set. */
  pre: Map<string, string[]>;
}

/** Dependency edges restricted to the set: each clause goes to its first satisfier in the set. */
function edges(pkgs: PackageInfo[], arch: string): Edges {
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const sorted = [...pkgs].sort((a, b) => (a.name < b.name ? -1 : 1));
  const deps = new Map<string, string[]>();
  const pre = new Map<string, string[]>();
  for (const p of pkgs) {
    const d = new Set<string>();
    const pd = new Set<string>();
    for (const field of ['Pre-Depends', 'Depends'] as const) {
      for (const clause of relations(p, field)) {
        let target: string | undefined;
        for (const rel of clause) {
          if (!appliesTo(rel, arch)) continue;
          const real = byName.get(rel.name);
          if (real && matches(rel, real, arch)) target = real.name;
          else target = sorted.find((q) => matches(rel, q, arch))?.name;
          if (target) break;
        }
        if (!target || target === p.name) continue;
        d.add(target);
        if (field === 'Pre-Depends') pd.add(target);
      }
    }
    deps.set(p.name, [...d].sort());
    pre.set(p.name, [...pd].sort());
  }
  return { deps, pre };
}

/** Tarjan's strongly connected components (iterative), each sorted by name. */
function sccs(nodes: string[], deps: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { v: string; i: number }[] = [{ v: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const top = work[work.length - 1];
      const ws = deps.get(top.v) ?? [];
      if (top.i < ws.length) {
        const w = ws[top.i++];
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== top.v);
        out.push(comp.sort());
      }
    }
  }
  return out;
}

/** Kahn's algorithm with name order as the tie-break; leftover cycles go by name. */
function topo(nodes: string[], deps: Map<string, string[]>): string[] {
  const set = new Set(nodes);
  const pending = new Map(nodes.map((n) => [n, (deps.get(n) ?? []).filter((d) => set.has(d) && d !== n).length]));
  const users = new Map<string, string[]>();
  for (const n of nodes) for (const d of deps.get(n) ?? []) if (set.has(d) && d !== n) users.set(d, [...(users.get(d) ?? []), n]);
  const out: string[] = [];
  const done = new Set<string>();
  while (out.length < nodes.length) {
    const ready = nodes.filter((n) => !done.has(n) && pending.get(n) === 0);
    // A cycle: take the first remaining name (deterministic break).
    const pick = ready.length ? ready[0] : nodes.find((n) => !done.has(n))!;
    done.add(pick);
    out.push(pick);
    for (const u of users.get(pick) ?? []) pending.set(u, pending.get(u)! - 1);
  }
  return out;
}

/** Orders a set: components in dependency order, inside each by Pre-Depends then name. */
function orderSet(names: string[], e: Edges): string[] {
  const set = new Set(names);
  const restrict = (m: Map<string, string[]>) => new Map(names.map((n) => [n, (m.get(n) ?? []).filter((d) => set.has(d))]));
  const deps = restrict(e.deps);
  const pre = restrict(e.pre);
  // Tarjan emits components with dependencies first.
  const out: string[] = [];
  for (const comp of sccs([...names].sort(), deps)) out.push(...(comp.length === 1 ? comp : topo(comp, pre)));
  return out;
}

/**
 * Splits a resolved set into the essential phase and the rest, each in
 * install order.
 *
 * @example
 * const { essential, rest } = installOrder(resolution.packages, 'amd64');
 * essential[0].name // e.g. 'gcc-14-base' — nothing it depends on comes later
 */
export function installOrder(pkgs: PackageInfo[], arch: string): InstallOrder {
  const e = edges(pkgs, arch);
  const ess = new Set<string>();
  const todo = pkgs.filter((p) => p.essential).map((p) => p.name);
  while (todo.length) {
    const n = todo.pop()!;
    if (ess.has(n)) continue;
    ess.add(n);
    todo.push(...(e.deps.get(n) ?? []));
  }
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const essential = orderSet([...ess], e).map((n) => byName.get(n)!);
  const rest = orderSet(pkgs.map((p) => p.name).filter((n) => !ess.has(n)), e).map((n) => byName.get(n)!);
  return { essential, rest };
}
