import { InvalidInputError } from '../errors/index.js';

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** Converts a dotted IPv4 address to its 32-bit number. */
export function ipv4ToNumber(address: string): number {
  if (!IPV4.test(address)) {
    throw new InvalidInputError(`invalid IPv4 address "${address}": expected four numbers 0–255 separated by dots`);
  }
  return address.split('.').reduce((total, part) => total * 256 + Number(part), 0);
}

/** Converts a 32-bit number to a dotted IPv4 address. */
export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export interface Ipv4Network {
  /** The address as written, e.g. the bridge's own address. */
  address: string;
  prefix: number;
  network: number;
  broadcast: number;
}

/** Parses "10.232.0.1/24" into the address, prefix and network bounds. */
export function parseCidr(cidr: string): Ipv4Network {
  const parts = cidr.split('/');
  const [address, prefixText] = parts;
  const prefix = Number(prefixText);
  if (parts.length !== 2 || !address || !/^\d{1,2}$/.test(prefixText ?? '') || prefix < 8 || prefix > 30) {
    throw new InvalidInputError(`invalid network "${cidr}": expected an IPv4 address with a prefix between /8 and /30, such as 10.232.0.1/24`);
  }
  const value = ipv4ToNumber(address);
  const size = 2 ** (32 - prefix);
  const network = value - (value % size);
  return { address, prefix, network, broadcast: network + size - 1 };
}

export interface Ipv4Range {
  start: string;
  end: string;
}

/**
 * Checks that a range lies inside a network, excluding its network and
 * broadcast addresses and the bridge's own address.
 */
export function requireRangeInNetwork(range: Ipv4Range, net: Ipv4Network): void {
  const start = ipv4ToNumber(range.start);
  const end = ipv4ToNumber(range.end);
  const bridge = ipv4ToNumber(net.address);
  if (start > end) {
    throw new InvalidInputError(`invalid address range ${range.start}–${range.end}: the first address is after the last`);
  }
  if (start <= net.network || end >= net.broadcast) {
    throw new InvalidInputError(
      `address range ${range.start}–${range.end} is not inside the bridge network ${numberToIpv4(net.network)}/${net.prefix} (without its network and broadcast addresses)`,
    );
  }
  if (bridge >= start && bridge <= end) {
    throw new InvalidInputError(`address range ${range.start}–${range.end} contains the bridge's own address ${net.address}`);
  }
}

/**
 * Picks the default server range of a bridge network: from the tenth address
 * (an address just below the middle in networks smaller than /27) to the one
 * before broadcast. When the bridge address falls inside, the range keeps
 * the larger side of it, so a bridge at .254 in a /24 only ends it at .253.
 */
export function defaultRange(net: Ipv4Network): Ipv4Range {
  const bridge = ipv4ToNumber(net.address);
  let start = net.network + Math.min(10, Math.max(1, Math.floor((net.broadcast - net.network) / 2) - 1));
  let end = net.broadcast - 1;
  if (bridge >= start && bridge <= end) {
    if (end - bridge >= bridge - start) {
      start = bridge + 1;
    } else {
      end = bridge - 1;
    }
  }
  return { start: numberToIpv4(start), end: numberToIpv4(end) };
}
