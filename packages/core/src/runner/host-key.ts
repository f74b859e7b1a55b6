import { createHash } from 'node:crypto';
import { InvalidInputError } from '../errors/index.js';

/** A host's public key: its algorithm and the raw key blob. */
export interface HostKey {
  type: string;
  blob: Buffer;
}

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
]);

/**
 * Parses a public key line as OpenSSH prints it ("ssh-ed25519 AAAA… comment").
 * The blob names its own type; a line whose prefix disagrees is rejected.
 */
export function parseHostKey(line: string): HostKey {
  const [type, data] = line.trim().split(/\s+/);
  if (!type || !data || !KEY_TYPES.has(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(data)) {
    throw new InvalidInputError(`invalid host key "${line.slice(0, 60)}": expected an OpenSSH public key line such as "ssh-ed25519 AAAAC3Nza…"`, {
      hints: ['copy the line from /etc/ssh/ssh_host_ed25519_key.pub on the host, or run `ssh-keyscan -t ed25519 HOST`'],
    });
  }
  const blob = Buffer.from(data, 'base64');
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const embedded = nameLength > 0 && blob.length >= 4 + nameLength ? blob.subarray(4, 4 + nameLength).toString('ascii') : '';
  const expected = type.startsWith('rsa-sha2') ? 'ssh-rsa' : type;
  if (embedded !== expected) {
    throw new InvalidInputError(`invalid host key: the key data is of type "${embedded || 'unknown'}", not "${type}"`);
  }
  return { type: expected, blob };
}

/** Formats a key blob as an OpenSSH public key line without a comment. */
export function formatHostKey(blob: Buffer): string {
  const nameLength = blob.readUInt32BE(0);
  const type = blob.subarray(4, 4 + nameLength).toString('ascii');
  return `${type} ${blob.toString('base64')}`;
}

/**
 * Computes the OpenSSH SHA-256 fingerprint of a key blob: "SHA256:" and the
 * base64 digest without `=` padding, as `ssh-keygen -l` prints it.
 */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
