/**
 * RPM version ordering: rpmvercmp() on single version strings, and
 * epoch:version-release (EVR) comparison, with rpm's `~` (sorts before
 * everything, even the end of the string) and `^` (sorts after the end of the
 * string but before anything else). Follows rpmio/rpmvercmp.c (rpm 4.18).
 */

/** An epoch:version-release triple; epoch 0 when absent, release optional in dependencies. */
export interface Evr {
  epoch: number;
  version: string;
  release?: string;
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const TILDE = 126;
const CARET = 94;

/**
 * Compares two version (or release) strings the way rpm does.
 *
 * @example
 * rpmvercmp('1.0~rc1', '1.0'); // -1
 * rpmvercmp('1.0^git1', '1.0'); // 1
 * rpmvercmp('2.10', '2.9'); // 1
 */
export function rpmvercmp(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const la = a.length;
  const lb = b.length;
  const at = (s: string, k: number, l: number) => (k < l ? s.charCodeAt(k) : 0);
  while (i < la || j < lb) {
    while (i < la && !isDigit(a.charCodeAt(i)) && !isAlpha(a.charCodeAt(i)) && a.charCodeAt(i) !== TILDE && a.charCodeAt(i) !== CARET) i++;
    while (j < lb && !isDigit(b.charCodeAt(j)) && !isAlpha(b.charCodeAt(j)) && b.charCodeAt(j) !== TILDE && b.charCodeAt(j) !== CARET) j++;
    const ca = at(a, i, la);
    const cb = at(b, j, lb);
    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      i++; j++;
      continue;
    }
    if (ca === CARET || cb === CARET) {
      if (i >= la) return -1;
      if (j >= lb) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      i++; j++;
      continue;
    }
    if (!(i < la && j < lb)) break;
    let ei = i;
    let ej = j;
    const isnum = isDigit(ca);
    if (isnum) {
      while (ei < la && isDigit(a.charCodeAt(ei))) ei++;
      while (ej < lb && isDigit(b.charCodeAt(ej))) ej++;
    } else {
      while (ei < la && isAlpha(a.charCodeAt(ei))) ei++;
      while (ej < lb && isAlpha(b.charCodeAt(ej))) ej++;
    }
    if (ej === j) return isnum ? 1 : -1; // numeric beats alpha
    let sa = a.slice(i, ei);
    let sb = b.slice(j, ej);
    if (isnum) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa < sb ? -1 : 1;
    i = ei;
    j = ej;
  }
  if (i >= la && j >= lb) return 0;
  return i >= la ? -1 : 1;
}

/**
 * Parses "[epoch:]version[-release]" (the form `rpm -q --qf '%{EVR}'` prints).
 *
 * @example
 * parseEvr('2:1.4-3.fc40'); // { epoch: 2, version: '1.4', release: '3.fc40' }
 */
export function parseEvr(s: string): Evr {
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon >= 0 && /^\d*$/.test(s.slice(0, colon))) {
    epoch = colon === 0 ? 0 : Number(s.slice(0, colon));
    rest = s.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash < 0) return { epoch, version: rest };
  return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
}

/** Renders an EVR the way rpm prints it (epoch only when non-zero). */
export function formatEvr(e: Evr): string {
  return `${e.epoch ? `${e.epoch}:` : ''}${e.version}${e.release !== undefined ? `-${e.release}` : ''}`;
}

/**
 * Compares two EVRs: epoch numerically, then version, then release with
 * rpmvercmp. When either side has no release (a dependency such as
 * `foo >= 1.2`), releases are not compared, as rpm does.
 *
 * @example
 * evrcmp(parseEvr('1:1.0-1'), parseEvr('2.0-1')); // 1
 */
export function evrcmp(a: Evr, b: Evr): -1 | 0 | 1 {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1;
  const v = rpmvercmp(a.version, b.version);
  if (v !== 0) return v;
  if (a.release === undefined || b.release === undefined) return 0;
  return rpmvercmp(a.release, b.release);
}
