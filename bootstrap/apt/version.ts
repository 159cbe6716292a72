/**
 * Debian version order, as dpkg defines it (deb-version(7)):
 * `[epoch:]upstream[-revision]`; epochs compare numerically, then upstream
 * and revision with dpkg's alternating non-digit/digit algorithm where `~`
 * sorts before everything (even the end of the string), letters before
 * other characters.
 */

/** A parsed version. */
export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/**
 * Splits a version into epoch, upstream and revision.
 *
 * @example
 * parseVersion('1:2.36.1-8+deb12u1') // { epoch: 1, upstream: '2.36.1', revision: '8+deb12u1' }
 */
export function parseVersion(v: string): DebVersion {
  v = v.trim();
  const colon = v.indexOf(':');
  let epoch = 0;
  if (colon >= 0) {
    epoch = Number(v.slice(0, colon)) || 0;
    v = v.slice(colon + 1);
  }
  const dash = v.lastIndexOf('-');
  if (dash >= 0) return { epoch, upstream: v.slice(0, dash), revision: v.slice(dash + 1) };
  return { epoch, upstream: v, revision: '' };
}

/** Sort weight of one character in a non-digit run (dpkg's `order()`). */
function order(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  if (c === 126 /* ~ */) return -1;
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return c;
  if (c >= 48 && c <= 57) return 0;
  return c + 256;
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

/** dpkg's `verrevcmp`: compares one upstream or revision part. */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a, i)) || (j < b.length && !isDigit(b, j))) {
      const ac = order(a, i);
      const bc = order(b, j);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (i < a.length && a.charCodeAt(i) === 48) i++;
    while (j < b.length && b.charCodeAt(j) === 48) j++;
    while (i < a.length && isDigit(a, i) && j < b.length && isDigit(b, j)) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && isDigit(a, i)) return 1;
    if (j < b.length && isDigit(b, j)) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/**
 * Compares two version strings: negative, zero or positive like a sort
 * comparator (only the sign is meaningful).
 *
 * @example
 * compareVersions('1.0~rc1', '1.0') < 0   // true
 * compareVersions('1:0.1', '2.0') > 0     // true
 * ['2.0', '1.0-1', '1.0'].sort(compareVersions) // ['1.0', '1.0-1', '2.0']
 */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  const va = parseVersion(a);
  const vb = parseVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch - vb.epoch;
  const r = compareFragment(va.upstream, vb.upstream);
  if (r) return r;
  return compareFragment(va.revision, vb.revision);
}

/** A relation operator; `<` and `>` are the obsolete forms of `<=` and `>=`. */
export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>';

/**
 * Whether `version` satisfies `op ref`.
 *
 * @example
 * satisfies('2.36-9', '>=', '2.36') // true
 * satisfies('1.0', '<<', '1.0')     // false
 */
export function satisfies(version: string, op: VersionOp, ref: string): boolean {
  const c = compareVersions(version, ref);
  switch (op) {
    case '<<': return c < 0;
    case '<=': return c <= 0;
    case '=': return c === 0;
    case '>=': return c >= 0;
    case '>>': return c > 0;
  }
}
