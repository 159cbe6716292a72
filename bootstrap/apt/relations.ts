/**
 * Package relationship fields (Debian Policy §7): Depends, Pre-Depends,
 * Recommends, Suggests, Conflicts, Breaks, Replaces, Provides, and the
 * Build-Depends syntax (arch restrictions `[amd64 !i386]`, build profiles
 * `<!nocheck>`), which a binary index normally lacks but is accepted.
 *
 * `a (>= 1) | b:any, c [!hurd-i386]` → `[[a >= 1, b:any], [c]]`: an AND of
 * ORs. Arch-restricted terms are kept and filtered with `appliesTo`.
 */
import type { VersionOp } from './version.js';

/** One term of a relationship: a package name and an optional constraint. */
export interface Relation {
  name: string;
  /** Arch qualifier after `:` — `any`, `native`, or an architecture. */
  archQualifier?: string;
  op?: VersionOp;
  version?: string;
  /** `[amd64 !i386]`: the architectures the term is restricted to. */
  archRestriction?: { negated: boolean; arches: string[] };
}

/** Alternatives of one clause: any one of them satisfies it. */
export type Alternatives = Relation[];

const OPS: Record<string, VersionOp> = { '<<': '<<', '<=': '<=', '=': '=', '>=': '>=', '>>': '>>', '<': '<=', '>': '>=' };

/**
 * Parses one term such as `libc6 (>= 2.36)`, `python3:any`,
 * `foo [amd64] <!nocheck>`.
 *
 * @example
 * parseRelation('libc6 (>= 2.36)') // { name: 'libc6', op: '>=', version: '2.36' }
 */
export function parseRelation(term: string): Relation {
  let s = term.trim();
  // Build profiles are irrelevant for binary packages: drop them.
  if (s.includes('<')) s = s.replace(/\s*<[!a-z][^<>]*>/g, '').trim();
  const m = /^([^\s:(\[]+)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^)\s<>=][^)\s]*)\s*\))?\s*(?:\[([^\]]*)\])?\s*$/.exec(s);
  if (!m) throw new SyntaxError(`cannot parse relation \`${term.trim()}\``);
  const rel: Relation = { name: m[1] };
  if (m[2]) rel.archQualifier = m[2];
  if (m[3]) {
    rel.op = OPS[m[3]];
    rel.version = m[4];
  }
  if (m[5] !== undefined) {
    const words = m[5].trim().split(/\s+/).filter(Boolean);
    const negated = words.length > 0 && words.every((w) => w.startsWith('!'));
    rel.archRestriction = { negated, arches: words.map((w) => w.replace(/^!/, '')) };
  }
  return rel;
}

/**
 * Parses a whole relationship field into clauses of alternatives.
 * An empty or missing field gives `[]`.
 *
 * @example
 * parseRelations('libc6 (>= 2.34), awk | mawk')
 * // → [[{ name: 'libc6', op: '>=', version: '2.34' }], [{ name: 'awk' }, { name: 'mawk' }]]
 */
export function parseRelations(field: string | undefined): Alternatives[] {
  if (!field) return [];
  const out: Alternatives[] = [];
  for (const clause of field.split(',')) {
    if (!clause.trim()) continue;
    out.push(clause.split('|').map(parseRelation));
  }
  return out;
}

/** A `Provides` entry: a virtual name, optionally versioned (`foo (= 1.2)`). */
export interface Provide {
  name: string;
  version?: string;
}

/**
 * Parses a Provides field. Only `=` is allowed there (Policy §7.5).
 *
 * @example
 * parseProvides('awk, libfoo-abi (= 3)') // [{ name: 'awk' }, { name: 'libfoo-abi', version: '3' }]
 */
export function parseProvides(field: string | undefined): Provide[] {
  // Hand-scanned: trixie's Provides lists run to ~1M terms (Rust crates), a regex per term is slow.
  if (!field) return [];
  const out: Provide[] = [];
  for (const raw of field.split(',')) {
    const term = raw.trim();
    if (!term) continue;
    const paren = term.indexOf('(');
    let name = paren < 0 ? term : term.slice(0, paren).trim();
    const colon = name.indexOf(':');
    if (colon >= 0) name = name.slice(0, colon);
    if (paren < 0) {
      out.push({ name });
      continue;
    }
    const inner = term.slice(paren + 1, term.indexOf(')', paren)).trim();
    out.push(inner.startsWith('=') ? { name, version: inner.slice(inner.startsWith('==') ? 2 : 1).trim() } : { name });
  }
  return out;
}

/**
 * Whether a term applies on `arch` given its `[arch]` restriction.
 * Wildcards such as `linux-any` or `any-amd64` match the usual way.
 *
 * @example
 * appliesTo(parseRelation('foo [!amd64]'), 'amd64') // false
 */
export function appliesTo(rel: Relation, arch: string): boolean {
  const r = rel.archRestriction;
  if (!r) return true;
  const hit = r.arches.some((a) => archMatches(a, arch));
  return r.negated ? !hit : hit;
}

/** Debian architecture wildcard match (`any`, `linux-any`, `any-amd64`). */
export function archMatches(pattern: string, arch: string): boolean {
  if (pattern === 'any' || pattern === arch) return true;
  const [os, cpu] = arch.includes('-') ? arch.split('-', 2) : ['linux', arch];
  if (pattern.endsWith('-any')) return pattern.slice(0, -4) === os;
  if (pattern.startsWith('any-')) return pattern.slice(4) === cpu;
  return false;
}

/**
 * Renders a term back to its Debian form (for error messages).
 *
 * @example
 * formatRelation({ name: 'libc6', op: '>=', version: '2.36' }) // 'libc6 (>= 2.36)'
 */
export function formatRelation(rel: Relation): string {
  let s = rel.name;
  if (rel.archQualifier) s += `:${rel.archQualifier}`;
  if (rel.op) s += ` (${rel.op} ${rel.version})`;
  return s;
}

/** Renders alternatives: `a | b (>= 2)`. */
export function formatAlternatives(alts: Alternatives): string {
  return alts.map(formatRelation).join(' | ');
}
