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
