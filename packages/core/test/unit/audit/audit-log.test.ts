import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, hashEvent } from '../../../src/audit/audit-log.js';

describe('canonicalJson', () => {
  it('sorts object keys recursively', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 2 }] } })).toBe('{"a":{"c":[3,{"e":2,"f":1}],"d":2},"b":1}');
  });

  it('keeps array order', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
  });

  it('gives the same text for the same data in another key order', () => {
    expect(canonicalJson({ x: 1, y: { p: true, q: null } })).toBe(canonicalJson({ y: { q: null, p: true }, x: 1 }));
  });

  it('sorts keys by code unit, upper case first', () => {
    expect(canonicalJson({ b: 1, B: 2, a: 3, _: 4 })).toBe('{"B":2,"_":4,"a":3,"b":1}');
  });

  it('writes a date as its ISO string', () => {
    expect(canonicalJson(new Date('2026-12-04T10:00:00.123Z'))).toBe('"2026-12-04T10:00:00.123Z"');
    expect(canonicalJson({ at: new Date('2026-12-04T10:00:00Z') })).toBe('{"at":"2026-12-04T10:00:00.000Z"}');
  });

  it('drops object keys whose value is undefined', () => {
    expect(canonicalJson({ a: undefined, b: 1, c: { d: undefined } })).toBe('{"b":1,"c":{}}');
  });

  it('writes undefined inside an array as null, as JSON.stringify does', () => {
    expect(canonicalJson([1, undefined, 2])).toBe('[1,null,2]');
    expect(canonicalJson({ list: [undefined] })).toBe(JSON.stringify({ list: [undefined] }));
  });

  it.each([
    [null, 'null'],
    [true, 'true'],
    [0, '0'],
    [-1.5, '-1.5'],
    ['a"b\\c\n', '"a\\"b\\\\c\\n"'],
    ['ü', '"ü"'],
    [[], '[]'],
    [{}, '{}'],
  ])('writes %j as %s', (value, text) => {
    expect(canonicalJson(value)).toBe(text);
  });

  it('gives the same text after a JSON round trip', () => {
    const details = { z: [1, { b: 'x', a: undefined }, undefined], at: new Date('2026-12-04T10:00:00Z'), n: null };
    expect(canonicalJson(JSON.parse(JSON.stringify(details)))).toBe(canonicalJson(details));
  });
});

describe('hashEvent', () => {
  const base = {
    occurred_at: new Date('2026-12-04T10:00:00.000Z'),
    actor_kind: 'admin',
    actor_id: 'alice',
    action: 'account.add',
    target_kind: 'account',
    target_id: 'acc-1',
    source_address: null,
    details: { githubLogin: 'octocat' },
    prev_hash: GENESIS_HASH,
  };

  it('is the SHA-256 of the canonical JSON', () => {
    // The hash was computed with: printf '%s' '<the canonical text>' | sha256sum
    expect(canonicalJson(base)).toBe(
      '{"action":"account.add","actor_id":"alice","actor_kind":"admin","details":{"githubLogin":"octocat"},"occurred_at":"2026-12-04T10:00:00.000Z","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","source_address":null,"target_id":"acc-1","target_kind":"account"}',
    );
    expect(hashEvent(base)).toBe('6c6ac8bf6a71ba562307aefedb68f3013f0f5223724829fa5f298b653eea1487');
  });

  it('starts the chain from 64 zeros', () => {
    expect(GENESIS_HASH).toBe('0'.repeat(64));
  });

  it('does not depend on the key order of details', () => {
    const sorted = { ...base, details: { a: 1, b: [1, 2] } };
    const reversed = { ...base, details: { b: [1, 2], a: 1 } };
    expect(hashEvent(sorted)).toBe(hashEvent(reversed));
  });

  it.each([
    ['occurred_at', new Date('2026-12-04T10:00:00.001Z')],
    ['actor_kind', 'customer'],
    ['actor_id', 'alicf'],
    ['action', 'account.remove'],
    ['target_kind', 'server'],
    ['target_id', 'acc-2'],
    ['source_address', '192.0.2.1'],
    ['source_address', ''],
    ['details', { githubLogin: 'octocaT' }],
    ['details', {}],
    ['details', { githubLogin: 'octocat', extra: null }],
    ['prev_hash', `${'0'.repeat(63)}1`],
  ])('changes when %s becomes %j', (field, value) => {
    expect(hashEvent({ ...base, [field]: value })).not.toBe(hashEvent(base));
  });
});
