import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { generateWireguardKeyPair, publicKeyOf, requireWireguardKey } from '../../../src/network/wireguard-keys.js';
import { hasCommand, requirement } from '../../support/requirements.js';

const hasWg = requirement(hasCommand('wg'), 'wg is missing (package wireguard-tools)');

/** Runs `wg pubkey` on a private key, passed on stdin as `wg` expects. */
function wgPubkey(privateKey: string): string {
  return execFileSync('wg', ['pubkey'], { input: `${privateKey}\n`, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
}

// A valid key: 32 bytes 0x01..0x20.
const VALID = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1)).toString('base64');

describe('generateWireguardKeyPair', () => {
  it('returns 44-character standard base64 keys', () => {
    const pair = generateWireguardKeyPair();

    expect(pair.privateKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(pair.publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it('returns keys that decode to 32 bytes', () => {
    const pair = generateWireguardKeyPair();

    expect(Buffer.from(pair.privateKey, 'base64')).toHaveLength(32);
    expect(Buffer.from(pair.publicKey, 'base64')).toHaveLength(32);
  });

  it('returns a new pair on each call', () => {
    expect(generateWireguardKeyPair().privateKey).not.toBe(generateWireguardKeyPair().privateKey);
  });

  it.runIf(hasWg)('returns keys that wg pubkey accepts and agrees with', () => {
    for (let round = 0; round < 20; round += 1) {
      const pair = generateWireguardKeyPair();

      expect(wgPubkey(pair.privateKey)).toBe(pair.publicKey);
    }
  });
});

describe('publicKeyOf', () => {
  it('returns the public key of a generated pair', () => {
    const pair = generateWireguardKeyPair();

    expect(publicKeyOf(pair.privateKey)).toBe(pair.publicKey);
  });

  it.runIf(hasWg)('matches wg pubkey for keys from wg genkey', () => {
    for (let round = 0; round < 10; round += 1) {
      const privateKey = execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim();

      expect(publicKeyOf(privateKey)).toBe(wgPubkey(privateKey));
    }
  });

  it.runIf(hasWg)('matches wg pubkey for a key that is not clamped', () => {
    const unclamped = Buffer.alloc(32, 0xff).toString('base64');

    expect(publicKeyOf(unclamped)).toBe(wgPubkey(unclamped));
  });

  it('rejects an invalid private key without quoting it', () => {
    const almost = VALID.slice(0, 43);

    expect(() => publicKeyOf(almost)).toThrow(InvalidInputError);
    expect(() => publicKeyOf(almost)).not.toThrow(almost);
  });
});

describe('requireWireguardKey', () => {
  it('returns a valid key unchanged', () => {
    expect(requireWireguardKey(VALID, 'public key')).toBe(VALID);
  });

  it.each([
    ['43 characters', VALID.slice(0, 43)],
    ['45 characters', `${VALID.slice(0, 43)}A=`],
    ['base64url "-"', `-${VALID.slice(1)}`],
    ['base64url "_"', `_${VALID.slice(1)}`],
    ['no padding', VALID.replace(/=$/, '')],
    ['32 characters', VALID.slice(0, 32)],
    ['empty', ''],
    ['leading whitespace', ` ${VALID.slice(1)}`],
    ['trailing newline', `${VALID}\n`],
    ['inner space', `${VALID.slice(0, 20)} ${VALID.slice(21)}`],
    ['33 bytes', Buffer.alloc(33, 1).toString('base64')],
    ['31 bytes', Buffer.alloc(31, 1).toString('base64')],
    ['stray bits before the padding', `${VALID.slice(0, 42)}B=`],
    ['two padding characters', `${VALID.slice(0, 42)}==`],
    ['non-base64 character', `*${VALID.slice(1)}`],
  ])('rejects a key with %s', (_case, value) => {
    expect(() => requireWireguardKey(value, 'public key')).toThrow(InvalidInputError);
  });

  it.runIf(hasWg)('rejects only keys that wg also rejects', () => {
    const bad = [VALID.slice(0, 43), `-${VALID.slice(1)}`, `${VALID.slice(0, 42)}B=`, `*${VALID.slice(1)}`];
    for (const value of bad) {
      expect(() => wgPubkey(value)).toThrow();
    }
  });

  it('states the received length and the base64url rule', () => {
    expect(() => requireWireguardKey(VALID.slice(0, 43), 'private key')).toThrow(
      'invalid WireGuard private key: expected 44 characters of standard base64 ending in "=" (32 bytes), received 43 characters: the "=" padding is missing',
    );
  });

  it('names base64url as the fault', () => {
    expect(() => requireWireguardKey(`-${VALID.slice(1)}`, 'private key')).toThrow(
      'received 44 characters: "-" or "_" mark base64url, not standard base64',
    );
  });

  it('hints that base64url and unpadded keys are not accepted', () => {
    const error = catchError(() => requireWireguardKey('', 'private key'));

    expect(error.hints[0]).toBe('base64url keys (with "-" or "_") and keys without the "=" padding are not accepted');
  });

  it('quotes a rejected public key', () => {
    const value = VALID.slice(0, 43);

    expect(() => requireWireguardKey(value, 'public key of peer "phone"')).toThrow(
      `invalid WireGuard public key of peer "phone": expected 44 characters of standard base64 ending in "=" (32 bytes), received "${value}" (43 characters)`,
    );
  });

  it.each(['private key', 'private key of vwg51820', 'key', 'public or private key'])('does not quote a rejected %s', (what) => {
    const value = VALID.slice(0, 43);
    const error = catchError(() => requireWireguardKey(value, what));

    expect(error.message).not.toContain(value);
    expect(JSON.stringify(error.toJSON())).not.toContain(value);
  });
});

function catchError(action: () => unknown): InvalidInputError {
  try {
    action();
  } catch (error) {
    if (error instanceof InvalidInputError) {
      return error;
    }
    throw error;
  }
  throw new Error('expected an InvalidInputError');
}
