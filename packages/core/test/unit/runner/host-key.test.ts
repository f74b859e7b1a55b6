import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { fingerprint, formatHostKey, parseHostKey } from '../../../src/runner/host-key.js';

// Generated once with `ssh-keygen -t ed25519 -C root@fixture` and
// `ssh-keygen -t ecdsa`. The fingerprints are what `ssh-keygen -lf` printed.
const ED25519_DATA = 'AAAAC3NzaC1lZDI1NTE5AAAAILRjrbEqQR7BmXvt6wDzi1LAe0rrugqJ0OYcSFmNylWZ';
const ED25519_LINE = `ssh-ed25519 ${ED25519_DATA} root@fixture`;
const ED25519_FINGERPRINT = 'SHA256:H7gl2X2sujO8pCnCPGauBDY0RGlm5hQcLvaHMNOReT4';

const ECDSA_DATA =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDq67IIjDP+4GhgvUPs9Csi0/gxjVgbSBHZTQFKC2/m/qS+d2Soo7Jo+5znGHpImGHrdZPty6PlQ3uHyryfVE4I=';
const ECDSA_LINE = `ecdsa-sha2-nistp256 ${ECDSA_DATA}`;
const ECDSA_FINGERPRINT = 'SHA256:MFDog6BcohIKrWG8jzCYShtjzZMBxID0chsgSMWyt5U';

/** Encodes values as SSH wire-format strings (a 32-bit length, then the bytes). */
function sshStrings(...values: Array<string | Buffer>): Buffer {
  return Buffer.concat(
    values.map((value) => {
      const bytes = Buffer.from(value);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([length, bytes]);
    }),
  );
}

const WHERE_TO_FIND = 'copy the line from /etc/ssh/ssh_host_ed25519_key.pub on the host, or run `ssh-keyscan -t ed25519 HOST`';

function syntaxError(line: string): InvalidInputError {
  return new InvalidInputError(`invalid host key "${line.slice(0, 60)}": expected an OpenSSH public key line such as "ssh-ed25519 AAAAC3Nza…"`, {
    hints: [WHERE_TO_FIND],
  });
}

describe('parseHostKey', () => {
  it('parses an ed25519 line with a comment', () => {
    const key = parseHostKey(ED25519_LINE);
    expect(key.type).toBe('ssh-ed25519');
    expect(key.blob).toEqual(Buffer.from(ED25519_DATA, 'base64'));
    expect(key.blob.length).toBe(51);
  });

  it('parses a line without a comment and with surrounding whitespace', () => {
    expect(parseHostKey(`  ssh-ed25519\t${ED25519_DATA}  \n`).blob).toEqual(Buffer.from(ED25519_DATA, 'base64'));
  });

  it('parses an ecdsa line', () => {
    expect(parseHostKey(ECDSA_LINE).type).toBe('ecdsa-sha2-nistp256');
  });

  it.each(['ssh-rsa', 'rsa-sha2-256', 'rsa-sha2-512'])('reads %s as an ssh-rsa key', (type) => {
    const blob = sshStrings('ssh-rsa', Buffer.from([1, 0, 1]), Buffer.from([0, 0xc3, 0x5a, 0x11]));
    expect(parseHostKey(`${type} ${blob.toString('base64')}`)).toEqual({ type: 'ssh-rsa', blob });
  });

  it.each([
    [`ssh-rsa ${ED25519_DATA}`, 'ssh-ed25519', 'ssh-rsa'],
    [`ecdsa-sha2-nistp256 ${ED25519_DATA}`, 'ssh-ed25519', 'ecdsa-sha2-nistp256'],
    [`ssh-ed25519 ${ECDSA_DATA}`, 'ecdsa-sha2-nistp256', 'ssh-ed25519'],
    [`ecdsa-sha2-nistp384 ${ECDSA_DATA}`, 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384'],
  ])('rejects a type mismatch in %j', (line, embedded, named) => {
    expect(() => parseHostKey(line)).toThrow(new InvalidInputError(`invalid host key: the key data is of type "${embedded}", not "${named}"`));
  });

  it.each(['ssh-ed25519 AAAA', 'ssh-ed25519 AA==', `ssh-ed25519 ${sshStrings('ssh-ed25519').subarray(0, 8).toString('base64')}`])(
    'rejects key data too short to name its type: %j',
    (line) => {
      expect(() => parseHostKey(line)).toThrow(new InvalidInputError('invalid host key: the key data is of type "unknown", not "ssh-ed25519"'));
    },
  );

  it.each([
    '',
    'hello',
    'ssh-ed25519',
    ED25519_DATA,
    `ssh-dss ${ED25519_DATA}`,
    `SSH-ED25519 ${ED25519_DATA}`,
    `ssh-ed25519 ${ED25519_DATA}!`,
    `ssh-ed25519 ${ED25519_DATA}===`,
    `[ha-1]:22 ssh-ed25519 ${ED25519_DATA}`,
    `ha-1 ssh-ed25519 ${ED25519_DATA}`,
    '-----BEGIN OPENSSH PRIVATE KEY-----',
  ])('rejects garbage %j', (line) => {
    expect(() => parseHostKey(line)).toThrow(syntaxError(line));
  });

  it('rejects base64url key data', () => {
    const base64url = Buffer.from(ECDSA_DATA, 'base64').toString('base64url');
    expect(base64url).toMatch(/[-_]/);
    const line = `ecdsa-sha2-nistp256 ${base64url}`;
    expect(() => parseHostKey(line)).toThrow(syntaxError(line));
  });

  it('shows at most 60 characters of the rejected line', () => {
    const line = `x${'y'.repeat(200)}`;
    expect(() => parseHostKey(line)).toThrow(`invalid host key "x${'y'.repeat(59)}": expected`);
  });

  it('hints where to find the key', () => {
    expect(() => parseHostKey('hello')).toThrow(expect.objectContaining({ hints: [WHERE_TO_FIND] }));
  });
});

describe('fingerprint', () => {
  it.each([
    [ED25519_LINE, ED25519_FINGERPRINT],
    [ECDSA_LINE, ECDSA_FINGERPRINT],
  ])('matches ssh-keygen -lf for %s', (line, expected) => {
    expect(fingerprint(parseHostKey(line).blob)).toBe(expected);
  });
});

describe('formatHostKey', () => {
  it('formats a blob as a line without a comment', () => {
    expect(formatHostKey(parseHostKey(ED25519_LINE).blob)).toBe(`ssh-ed25519 ${ED25519_DATA}`);
  });

  it.each([ED25519_LINE, ECDSA_LINE])('round-trips %s through parseHostKey', (line) => {
    const key = parseHostKey(line);
    const again = parseHostKey(formatHostKey(key.blob));
    expect(again).toEqual(key);
  });
});
