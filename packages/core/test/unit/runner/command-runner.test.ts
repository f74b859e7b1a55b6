import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseKeyValueLines, shellQuote } from '../../../src/runner/command-runner.js';
import { hasCommand, requirement } from '../../support/requirements.js';

const hasBash = requirement(hasCommand('bash'), 'bash is not installed');

/**
 * Runs `printf '%s\0' WORD…` in bash and returns what it printed for each
 * word. One bash process checks a whole batch, which keeps the test fast.
 */
function printInBash(words: string[]): string[] {
  const output = execFileSync('bash', ['-c', `printf '%s\\0' ${words.join(' ')}`], { encoding: 'utf8' });
  return output.split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  it.each([
    ['plain', 'plain'],
    ['/var/lib/vome/host', '/var/lib/vome/host'],
    ['52:54:00:ab:cd:ef,10.0.0.2,kitchen', '52:54:00:ab:cd:ef,10.0.0.2,kitchen'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$HOME', "'$HOME'"],
    ['`id`', "'`id`'"],
    ['a\nb', "'a\nb'"],
    ['*', "'*'"],
    ['~', "'~'"],
  ])('quotes %j as %s', (value, quoted) => {
    expect(shellQuote(value)).toBe(quoted);
  });

  it('leaves a number unquoted', () => {
    expect(shellQuote(42)).toBe('42');
  });

  it.runIf(hasBash)('makes bash print any string back unchanged', () => {
    const special = fc.constantFrom("'", '"', '\\', '$', '`', '!', ' ', '\t', '\n', '*', '?', '[', ']', '{', '}', ';', '&', '|', '<', '>', '(', ')', '#', '~', '-', '%', '=');
    const unit = fc.oneof(special, fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
    const text = fc.string({ unit, maxLength: 40 }).filter((value) => !value.includes('\0'));
    // 10 runs of 20 strings: 200 strings in 10 bash processes.
    fc.assert(
      fc.property(fc.array(text, { minLength: 20, maxLength: 20 }), (values) => {
        expect(printInBash(values.map((value) => shellQuote(value)))).toEqual(values);
      }),
      { numRuns: 10 },
    );
  });
});

describe('parseKeyValueLines', () => {
  it('splits each line at its first =', () => {
    expect(parseKeyValueLines('a=1\nerror=x=y\n')).toEqual({ a: '1', error: 'x=y' });
  });

  it('ignores lines without a key', () => {
    expect(parseKeyValueLines('header\n=orphan\n\nb= 2 ')).toEqual({ b: '2' });
  });

  it('keeps the later of two equal keys', () => {
    expect(parseKeyValueLines('a=1\na=2')).toEqual({ a: '2' });
  });
});
