import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { InvalidInputError } from '../errors/index.js';

/** A WireGuard key pair, both keys in the form `wg` reads and prints. */
export interface WireguardKeyPair {
  privateKey: string;
  publicKey: string;
}

/**
 * 32 bytes in standard base64: 42 free characters, then one that carries only
 * two bits (its four low bits must be zero, as `wg` checks), then the "=" pad.
 */
const KEY_PATTERN = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** DER prefix of a PKCS #8 X25519 private key, followed by the 32 raw key bytes. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * Generates a WireGuard key pair with Node's X25519, so no `wg genkey` runs
 * and the private key never passes through a shell.
 *
 * @example
 * const { privateKey, publicKey } = generateWireguardKeyPair();
 * // publicKey: 44 characters such as "aBs0PzxsTCfSAcruz5aGuvt8b+HFp19YnblWrBUdrz4="
 */
export function generateWireguardKeyPair(): WireguardKeyPair {
  const pair = generateKeyPairSync('x25519');
  // JWK carries the raw keys in base64url, but WireGuard reads only standard base64.
  const privateJwk = pair.privateKey.export({ format: 'jwk' });
  const publicJwk = pair.publicKey.export({ format: 'jwk' });
  if (privateJwk.d === undefined || publicJwk.x === undefined) {
    throw new Error('X25519 key export returned no key bytes');
  }
  return { privateKey: base64urlToBase64(privateJwk.d), publicKey: base64urlToBase64(publicJwk.x) };
}

/**
 * Checks that a value is a WireGuard key: 44 characters of standard base64
 * ending in "=" that decode to 32 bytes. Returns the value unchanged. `what`
 * names the key in the message, e.g. "public key of peer phone". The value
 * is quoted in the message only when `what` names a public key, because a
 * private key must never reach an error message or a log.
 *
 * @example
 * requireWireguardKey(peer.publicKey, `public key of peer "${peer.name}"`);
 */
export function requireWireguardKey(value: string, what: string): string {
  if (KEY_PATTERN.test(value)) {
    return value;
  }
  const isPublic = /\bpublic\b/i.test(what) && !/\bprivate\b/i.test(what);
  const received = isPublic ? `"${value}" (${value.length} characters)` : `${value.length} characters`;
  throw new InvalidInputError(
    `invalid WireGuard ${what}: expected 44 characters of standard base64 ending in "=" (32 bytes), received ${received}${keyFault(value)}`,
    {
      hints: [
        'base64url keys (with "-" or "_") and keys without the "=" padding are not accepted',
        'create a key pair with `wg genkey | tee peer.key | wg pubkey` and pass the printed public key',
      ],
    },
  );
}

/**
 * Computes the public key of a WireGuard private key, as `wg pubkey` does
 * (X25519 clamps the scalar, so any 32 bytes are a valid private key).
 *
 * @example
 * publicKeyOf(generated.privateKey) === generated.publicKey // true
 */
export function publicKeyOf(privateKey: string): string {
  requireWireguardKey(privateKey, 'private key');
  const der = Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, 'base64')]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  if (jwk.x === undefined) {
    throw new Error('X25519 public key export returned no key bytes');
  }
  return base64urlToBase64(jwk.x);
}

function base64urlToBase64(value: string): string {
  return Buffer.from(value, 'base64url').toString('base64');
}

/** Names the likely cause of a rejected key, without quoting the key. */
function keyFault(value: string): string {
  if (value.length === 0) {
    return ': the value is empty';
  }
  if (/\s/.test(value)) {
    return ': the value contains whitespace';
  }
  if (/[-_]/.test(value)) {
    return ': "-" or "_" mark base64url, not standard base64';
  }
  if (value.length === 43 && !value.endsWith('=')) {
    return ': the "=" padding is missing';
  }
  if (value.length === 44 && /^[A-Za-z0-9+/]{43}=$/.test(value)) {
    return ': the last character before "=" has bits set that a 32-byte key cannot have';
  }
  if (/[^A-Za-z0-9+/=]/.test(value)) {
    return ': the value contains characters outside standard base64';
  }
  return '';
}
