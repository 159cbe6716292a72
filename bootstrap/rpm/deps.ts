/**
 * RPM dependencies as plain data: simple `name [op evr]` relations, the
 * flag bits rpm stores in headers, range overlap (rpmdsCompare), and the
 * rich/boolean dependency grammar of rpm >= 4.13:
 *
 *   (A and B and ...)  (A or B or ...)  (A if B [else C])  (A unless B [else C])
 *   (A with B)  (A without B)           each operand a simple dep or a nested (...)
 */
import { NsboxError } from '../../errors.js';
import { evrcmp, parseEvr, formatEvr, type Evr } from './vercmp.js';

/** Comparison operator as primary.xml spells it. */
export type DepOp = 'LT' | 'LE' | 'EQ' | 'GE' | 'GT';

/** One dependency relation; `pre` marks Requires(pre)/PreReq. A rich dependency keeps its text in `name`. */
export interface Dep {
  name: string;
  op?: DepOp;
  evr?: Evr;
  pre?: boolean;
}

/** rpm's RPMSENSE_* bits that matter here (rpmds.h). */
export const SENSE = {
  LESS: 1 << 1,
  GREATER: 1 << 2,
  EQUAL: 1 << 3,
  PREREQ: 1 << 6,
  INTERP: 1 << 8,
  SCRIPT_PRE: 1 << 9,
  SCRIPT_POST: 1 << 10,
  SCRIPT_PREUN: 1 << 11,
  SCRIPT_POSTUN: 1 << 12,
  RPMLIB: 1 << 24,
} as const;

const OP_BITS: Record<DepOp, number> = {
  LT: SENSE.LESS, LE: SENSE.LESS | SENSE.EQUAL, EQ: SENSE.EQUAL, GE: SENSE.GREATER | SENSE.EQUAL, GT: SENSE.GREATER,
};

/** Operator bits of a Dep. */
export function opBits(op: DepOp | undefined): number {
  return op ? OP_BITS[op] : 0;
}

/** The DepOp for header sense flags, or undefined when unversioned. */
export function opFromSense(flags: number): DepOp | undefined {
  const f = flags & (SENSE.LESS | SENSE.GREATER | SENSE.EQUAL);
  for (const [op, bits] of Object.entries(OP_BITS)) if (bits === f) return op as DepOp;
  return undefined;
}

/** True for a Requires(pre) or PreReq relation (rpm orders those first). */
export function isPreSense(flags: number): boolean {
  return (flags & (SENSE.PREREQ | SENSE.SCRIPT_PRE)) !== 0;
}

/**
 * Whether a provide and a require with the same name overlap, the way
 * rpmdsCompare decides: unversioned on either side always overlaps.
 *
 * @example
 * overlaps({ name: 'x', op: 'EQ', evr: parseEvr('1.2-1') }, { name: 'x', op: 'GE', evr: parseEvr('1.0') }); // true
 */
export function overlaps(a: Dep, b: Dep): boolean {
  if (!a.op || !b.op || !a.evr || !b.evr) return true;
  const sense = evrcmp(a.evr, b.evr);
  const fa = OP_BITS[a.op];
  const fb = OP_BITS[b.op];
  if (sense < 0) return (fa & SENSE.GREATER) !== 0 || (fb & SENSE.LESS) !== 0;
  if (sense > 0) return (fa & SENSE.LESS) !== 0 || (fb & SENSE.GREATER) !== 0;
  return ((fa & SENSE.EQUAL) && (fb & SENSE.EQUAL)) || ((fa & SENSE.LESS) && (fb & SENSE.LESS)) || ((fa & SENSE.GREATER) && (fb & SENSE.GREATER)) ? true : false;
}

const OP_TEXT: Record<DepOp, string> = { LT: '<', LE: '<=', EQ: '=', GE: '>=', GT: '>' };
const TEXT_OP: Record<string, DepOp> = { '<': 'LT', '<=': 'LE', '=<': 'LE', '=': 'EQ', '==': 'EQ', '>=': 'GE', '=>': 'GE', '>': 'GT' };

/**
 * Renders a dependency as rpm prints it.
 *
 * @example
 * formatDep({ name: 'bash', op: 'GE', evr: parseEvr('5.0') }); // "bash >= 5.0"
 */
export function formatDep(d: Dep): string {
  return d.op && d.evr ? `${d.name} ${OP_TEXT[d.op]} ${formatEvr(d.evr)}` : d.name;
}

/** True when the dependency text is a rich (boolean) dependency. */
export function isRich(name: string): boolean {
  return name.startsWith('(');
}

/** Parsed rich dependency. */
export type RichDep =
  | { op: 'dep'; dep: Dep }
  | { op: 'and' | 'or' | 'with' | 'without'; args: RichDep[] }
  | { op: 'if' | 'unless'; then: RichDep; cond: RichDep; else?: RichDep };

/** A rich dependency that does not follow rpm's grammar. */
export class RichDepError extends NsboxError {
  constructor(text: string, reason: string) {
    super(`cannot parse rich dependency \`${text}\`: ${reason}`, { code: 'rich-dep' });
  }
}

const KEYWORDS = new Set(['and', 'or', 'if', 'else', 'unless', 'with', 'without']);

/**
 * Parses a rich dependency such as `(foo >= 2 or (bar if baz))`.
 * A plain `name [op evr]` is returned as `{ op: 'dep' }`.
 *
 * @example
 * parseRich('(a and (b >= 1 or c))');
 * // { op: 'and', args: [{ op: 'dep', dep: { name: 'a' } }, { op: 'or', args: [...] }] }
 */
export function parseRich(text: string): RichDep {
  let pos = 0;
  const fail = (why: string): never => { throw new RichDepError(text, `${why} at offset ${pos}`); };
  const ws = () => { while (pos < text.length && /\s/.test(text[pos]!)) pos++; };
  const word = (): string => {
    ws();
    const start = pos;
    let depth = 0;
    while (pos < text.length) {
      const c = text[pos]!;
      if (/\s/.test(c)) break;
      if (c === '(') depth++;
      else if (c === ')') { if (depth === 0) break; depth--; }
      pos++;
    }
    return text.slice(start, pos);
  };
  const peekWord = (): string => { const save = pos; const w = word(); pos = save; return w; };

  const simple = (): RichDep => {
    const name = word();
    if (!name) fail('expected a dependency');
    if (KEYWORDS.has(name)) fail(`unexpected \`${name}\``);
    const save = pos;
    ws();
    const m = /^(<=|=<|>=|=>|==|<|>|=)/.exec(text.slice(pos));
    if (!m) { pos = save; return { op: 'dep', dep: { name } }; }
    pos += m[1]!.length;
    const v = word();
    if (!v) fail('expected a version');
    return { op: 'dep', dep: { name, op: TEXT_OP[m[1]!], evr: parseEvr(v) } };
  };
  const term = (): RichDep => {
    ws();
    if (text[pos] === '(') return group();
    return simple();
  };
  const group = (): RichDep => {
    ws();
    if (text[pos] !== '(') fail('expected `(`');
    pos++;
    const first = term();
    ws();
    let node: RichDep = first;
    const kw = peekWord();
    if (kw === 'and' || kw === 'or' || kw === 'with' || kw === 'without') {
      const args = [first];
      while (peekWord() === kw) { word(); args.push(term()); ws(); }
      if (KEYWORDS.has(peekWord())) fail(`cannot mix \`${kw}\` with \`${peekWord()}\` without parentheses`);
      if ((kw === 'without') && args.length !== 2) fail('`without` takes exactly two operands');
      node = { op: kw, args };
    } else if (kw === 'if' || kw === 'unless') {
      word();
      const cond = term();
      ws();
      let otherwise: RichDep | undefined;
      if (peekWord() === 'else') { word(); otherwise = term(); ws(); }
      node = otherwise ? { op: kw, then: first, cond, else: otherwise } : { op: kw, then: first, cond };
    } else if (kw && text[pos] !== ')') {
      fail(`unknown operator \`${kw}\``);
    }
    ws();
    if (text[pos] !== ')') fail('expected `)`');
    pos++;
    return node;
  };

  const node = isRich(text.trimStart()) ? group() : simple();
  ws();
  if (pos !== text.length) fail('trailing text');
  return node;
}

/** Every simple dependency named anywhere in a rich dependency. */
export function richLeaves(r: RichDep, out: Dep[] = []): Dep[] {
  if (r.op === 'dep') out.push(r.dep);
  else if ('args' in r) for (const a of r.args) richLeaves(a, out);
  else { richLeaves(r.then, out); richLeaves(r.cond, out); if (r.else) richLeaves(r.else, out); }
  return out;
}
