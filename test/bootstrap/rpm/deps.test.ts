import assert from 'node:assert/strict';
import { parseRich, overlaps, formatDep, opFromSense, isPreSense, SENSE, RichDepError, type Dep } from '../../../bootstrap/rpm/deps.js';
import { parseEvr } from '../../../bootstrap/rpm/vercmp.js';

const d = (name: string, op?: Dep['op'], evr?: string): Dep => (op && evr ? { name, op, evr: parseEvr(evr) } : { name });

describe('rich dependency parser', () => {
  it('parses and/or chains with versions and nesting', () => {
    assert.deepEqual(parseRich('(a and (b >= 1.2-3 or c) and d)'), {
      op: 'and',
      args: [
        { op: 'dep', dep: { name: 'a' } },
        { op: 'or', args: [{ op: 'dep', dep: d('b', 'GE', '1.2-3') }, { op: 'dep', dep: { name: 'c' } }] },
        { op: 'dep', dep: { name: 'd' } },
      ],
    });
  });

  it('parses if/else, unless, with and without', () => {
    assert.deepEqual(parseRich('(x if y else z)'), { op: 'if', then: { op: 'dep', dep: { name: 'x' } }, cond: { op: 'dep', dep: { name: 'y' } }, else: { op: 'dep', dep: { name: 'z' } } });
    assert.equal((parseRich('(x unless y)') as { op: string }).op, 'unless');
    assert.deepEqual(parseRich('(pkgA-foo with pkgA-bar > 2)'), { op: 'with', args: [{ op: 'dep', dep: { name: 'pkgA-foo' } }, { op: 'dep', dep: d('pkgA-bar', 'GT', '2') }] });
    assert.equal((parseRich('(kernel without kernel-debug)') as { op: string }).op, 'without');
  });

  it('keeps parentheses that belong to a dependency name', () => {
    assert.deepEqual(parseRich('(libc.so.6()(64bit) or /bin/sh)'), { op: 'or', args: [{ op: 'dep', dep: { name: 'libc.so.6()(64bit)' } }, { op: 'dep', dep: { name: '/bin/sh' } }] });
    assert.deepEqual(parseRich('(font(:lang=en) if langpacks-core)'), { op: 'if', then: { op: 'dep', dep: { name: 'font(:lang=en)' } }, cond: { op: 'dep', dep: { name: 'langpacks-core' } } });
  });

  it('refuses malformed expressions with a one-line error', () => {
    for (const bad of ['(a and b or c)', '(a and)', '(a frob b)', '(a and b', '(a without b without c)', '()']) {
      assert.throws(() => parseRich(bad), RichDepError, bad);
    }
  });
});

describe('dependency ranges', () => {
  it('overlap the way rpmdsCompare decides', () => {
    assert.ok(overlaps(d('x', 'EQ', '1.2-1'), d('x', 'GE', '1.0')));
    assert.ok(!overlaps(d('x', 'EQ', '1.2-1'), d('x', 'LT', '1.2')));
    assert.ok(overlaps(d('x', 'EQ', '1.2-1'), d('x', 'LE', '1.2')));
    assert.ok(overlaps(d('x', 'EQ', '1.2-1'), d('x', 'EQ', '1.2')), 'no release in the require: release ignored');
    assert.ok(!overlaps(d('x', 'EQ', '1.2-1'), d('x', 'EQ', '1.2-2')));
    assert.ok(overlaps(d('x'), d('x', 'LT', '0.1')), 'unversioned provide satisfies any require');
    assert.ok(!overlaps(d('x', 'EQ', '1:1.0-1'), d('x', 'GE', '2.0')) === false, 'epoch wins');
    assert.ok(overlaps(d('x', 'GT', '2'), d('x', 'GT', '3')), 'two open-ended ranges overlap');
    assert.ok(!overlaps(d('x', 'LT', '2'), d('x', 'GT', '3')));
  });

  it('maps header sense flags', () => {
    assert.equal(opFromSense(SENSE.GREATER | SENSE.EQUAL), 'GE');
    assert.equal(opFromSense(0), undefined);
    assert.ok(isPreSense(SENSE.SCRIPT_PRE) && isPreSense(SENSE.PREREQ) && !isPreSense(SENSE.SCRIPT_POST));
    assert.equal(formatDep(d('bash', 'GE', '1:5.0')), 'bash >= 1:5.0');
  });
});
