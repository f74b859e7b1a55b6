import { describe, expect, it } from 'vitest';
import { isDnsLabel, requireDnsLabel } from '../../../src/naming/dns-label.js';

describe('isDnsLabel', () => {
  it.each(['a', 'kitchen', 'flat-12', '0', 'a'.repeat(63), 'x1-y2'])('accepts %s', (label) => {
    expect(isDnsLabel(label)).toBe(true);
  });

  it.each(['', 'A', 'Kitchen', '-a', 'a-', 'a_b', 'a.b', 'a'.repeat(64), 'ä', 'a b', ' a'])('rejects %j', (label) => {
    expect(isDnsLabel(label)).toBe(false);
  });
});

describe('requireDnsLabel', () => {
  it('names the field, the value and the rule', () => {
    expect(() => requireDnsLabel('server name', 'Bad_Name')).toThrow(
      'invalid server name "Bad_Name": use 1–63 characters of lower-case letters a–z, digits and hyphens, not starting or ending with a hyphen',
    );
  });

  it('returns a valid label unchanged', () => {
    expect(requireDnsLabel('subdomain', 'flat-12')).toBe('flat-12');
  });
});
