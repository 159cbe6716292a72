import assert from 'node:assert/strict';
import { appliesTo, archMatches, formatAlternatives, parseProvides, parseRelation, parseRelations } from '../../../bootstrap/apt/relations.js';

describe('apt/relations', () => {
  it('parses alternatives and version constraints', () => {
    assert.deepEqual(parseRelations('libc6 (>= 2.34), awk | mawk (<< 2:0), foo (=1.0)'), [
      [{ name: 'libc6', op: '>=', version: '2.34' }],
      [{ name: 'awk' }, { name: 'mawk', op: '<<', version: '2:0' }],
      [{ name: 'foo', op: '=', version: '1.0' }],
    ]);
    assert.deepEqual(parseRelations(''), []);
    assert.deepEqual(parseRelations(undefined), []);
  });

  it('reads the obsolete < and > as <= and >=', () => {
    assert.equal(parseRelation('a (< 1)').op, '<=');
    assert.equal(parseRelation('a (> 1)').op, '>=');
    assert.equal(parseRelation('a (<< 1)').op, '<<');
  });

  it('parses arch qualifiers, arch restrictions and build profiles', () => {
    assert.deepEqual(parseRelation('python3:any (>= 3.11~)'), { name: 'python3', archQualifier: 'any', op: '>=', version: '3.11~' });
    assert.equal(parseRelation('perl:native').archQualifier, 'native');
    const r = parseRelation('libseccomp-dev [amd64 arm64] <!nocheck>');
    assert.deepEqual(r.archRestriction, { negated: false, arches: ['amd64', 'arm64'] });
    assert.ok(appliesTo(r, 'amd64'));
    assert.ok(!appliesTo(r, 'i386'));
    assert.ok(!appliesTo(parseRelation('foo [!amd64]'), 'amd64'));
    assert.ok(appliesTo(parseRelation('foo [linux-any]'), 'arm64'));
    assert.ok(archMatches('any-amd64', 'amd64'));
  });

  it('parses versioned Provides', () => {
    assert.deepEqual(parseProvides('awk, libfoo-abi (= 3), bar:any, x (=1.2)'), [{ name: 'awk' }, { name: 'libfoo-abi', version: '3' }, { name: 'bar' }, { name: 'x', version: '1.2' }]);
  });

  it('rejects garbage and formats relations back', () => {
    assert.throws(() => parseRelation('foo (>= )'), SyntaxError);
    assert.equal(formatAlternatives(parseRelations('a (>= 1) | b:any')[0]), 'a (>= 1) | b:any');
  });
});
