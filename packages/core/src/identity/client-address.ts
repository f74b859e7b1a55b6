import { BlockList, isIP } from 'node:net';
import { InvalidInputError } from '../errors/index.js';

/** Strips the IPv4-mapped prefix Node gives IPv4 peers on a dual-stack socket. */
function plainAddress(address: string): string {
  const trimmed = address.trim();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(trimmed) ? trimmed.slice(7) : trimmed;
}

/**
 * Parses a comma-separated list of proxy addresses and CIDR networks
 * ("127.0.0.1, 10.0.0.0/8, ::1") into a BlockList.
 *
 * @throws InvalidInputError naming the first entry that is neither.
 */
export function parseTrustedProxies(list: string): BlockList {
  const trusted = new BlockList();
  for (const raw of list.split(',')) {
    const entry = raw.trim();
    if (entry === '') {
      continue;
    }
    const [address = '', prefixText, ...extra] = entry.split('/');
    const family = isIP(address);
    const prefix = prefixText === undefined ? undefined : Number(prefixText);
    const maxPrefix = family === 6 ? 128 : 32;
    // Digits only: Number() would read "" as 0 (trusting every address), "0x8" as 8.
    const validPrefix = prefixText === undefined || (/^\d{1,3}$/.test(prefixText) && Number(prefixText) <= maxPrefix);
    if (family === 0 || extra.length > 0 || !validPrefix) {
      throw new InvalidInputError(`invalid trusted proxy "${entry}": use comma-separated IP addresses or networks, such as 127.0.0.1,10.0.0.0/8`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) {
      trusted.addAddress(address, type);
    } else {
      trusted.addSubnet(address, prefix, type);
    }
  }
  return trusted;
}

function isTrusted(trusted: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Returns the address of the client a request came from. The TCP peer is
 * the client unless the peer is a trusted proxy. Then X-Forwarded-For is
 * read from the right, skipping trusted proxies, and the first other
 * address is the client. Entries a client wrote further left are never
 * reached. A malformed entry stops the walk, and the address that proxy saw
 * (the hop to its right) is used.
 */
export function resolveClientAddress(peerAddress: string, forwardedFor: string | null | undefined, trusted: BlockList): string {
  let client = plainAddress(peerAddress);
  if (!isTrusted(trusted, client) || !forwardedFor) {
    return client;
  }
  const hops = forwardedFor.split(',').map(plainAddress).reverse();
  for (const hop of hops) {
    if (isIP(hop) === 0) {
      return client;
    }
    client = hop;
    if (!isTrusted(trusted, hop)) {
      return hop;
    }
  }
  return client;
}

/** Expands a valid IPv6 address into its eight 16-bit groups. */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  return [...headGroups, ...Array.from({ length: tail === undefined ? 0 : missing }, () => '0'), ...tailGroups].map((group) => parseInt(group, 16));
}

/**
 * Returns the key a client address is rate-limited under. An IPv4 address
 * is its own key, also when written as IPv4-mapped IPv6. An IPv6 address is
 * keyed by its /64, because one customer line usually gets a whole /64 and
 * could otherwise rotate through it.
 */
export function rateLimitBucket(address: string): string {
  if (isIP(address) !== 6) {
    return address;
  }
  const groups = ipv6Groups(address);
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (mapped) {
    const [high = 0, low = 0] = groups.slice(6);
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  return `${groups.slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
}
