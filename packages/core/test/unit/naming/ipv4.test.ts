import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { defaultRange, ipv4ToNumber, numberToIpv4, parseCidr, requireRangeInNetwork } from '../../../src/naming/ipv4.js';

describe('ipv4ToNumber', () => {
  it.each([
    ['0.0.0.0', 0],
    ['0.0.0.1', 1],
    ['0.0.1.0', 256],
    ['10.232.0.1', 182_976_513],
    ['192.168.1.10', 3_232_235_786],
    ['255.255.255.255', 4_294_967_295],
  ])('converts %s to %d', (address, value) => {
    expect(ipv4ToNumber(address)).toBe(value);
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.-4', '01.2.3.4', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.a', '1..3.4', '::1', '1.2.3.4/24'])(
    'rejects %j',
    (address) => {
      expect(() => ipv4ToNumber(address)).toThrow(
        new InvalidInputError(`invalid IPv4 address "${address}": expected four numbers 0–255 separated by dots`),
      );
    },
  );

  it('raises InvalidInputError', () => {
    expect(() => ipv4ToNumber('nope')).toThrow(InvalidInputError);
  });
});

describe('numberToIpv4', () => {
  it.each([
    [0, '0.0.0.0'],
    [256, '0.0.1.0'],
    [182_976_513, '10.232.0.1'],
    [3_232_235_786, '192.168.1.10'],
    [4_294_967_295, '255.255.255.255'],
  ])('converts %d to %s', (value, address) => {
    expect(numberToIpv4(value)).toBe(address);
  });

  it('round-trips every 32-bit number', () => {
    fc.assert(
      fc.property(fc.nat({ max: 4_294_967_295 }), (value) => {
        expect(ipv4ToNumber(numberToIpv4(value))).toBe(value);
      }),
    );
  });
});

describe('parseCidr', () => {
  it.each([
    ['10.232.0.1/24', { address: '10.232.0.1', prefix: 24, network: 182_976_512, broadcast: 182_976_767 }],
    ['10.232.0.77/26', { address: '10.232.0.77', prefix: 26, network: 182_976_576, broadcast: 182_976_639 }],
    ['172.16.5.4/12', { address: '172.16.5.4', prefix: 12, network: 2_886_729_728, broadcast: 2_887_778_303 }],
    ['10.1.2.3/8', { address: '10.1.2.3', prefix: 8, network: 167_772_160, broadcast: 184_549_375 }],
    ['10.0.0.5/30', { address: '10.0.0.5', prefix: 30, network: 167_772_164, broadcast: 167_772_167 }],
  ])('parses %s', (cidr, expected) => {
    expect(parseCidr(cidr)).toEqual(expected);
  });

  it.each([
    '10.0.0.1',
    '10.0.0.1/',
    '/24',
    '10.0.0.1/7',
    '10.0.0.1/31',
    '10.0.0.1/32',
    '10.0.0.1/0',
    '10.0.0.1/-24',
    '10.0.0.1/24.5',
    '10.0.0.1/abc',
    '10.0.0.1/ 24',
    '10.0.0.1/+24',
    '10.0.0.1/0x18',
    '10.0.0.1/2e1',
    '10.0.0.1/24/8',
  ])('rejects %j', (cidr) => {
    expect(() => parseCidr(cidr)).toThrow(
      new InvalidInputError(`invalid network "${cidr}": expected an IPv4 address with a prefix between /8 and /30, such as 10.232.0.1/24`),
    );
  });

  it('rejects an invalid address with a valid prefix', () => {
    expect(() => parseCidr('300.0.0.1/24')).toThrow('invalid IPv4 address "300.0.0.1": expected four numbers 0–255 separated by dots');
  });
});

describe('requireRangeInNetwork', () => {
  const net = parseCidr('10.232.0.1/24');

  it.each([
    ['10.232.0.10', '10.232.0.254'],
    ['10.232.0.2', '10.232.0.2'],
    ['10.232.0.2', '10.232.0.254'],
  ])('accepts %s–%s', (start, end) => {
    expect(() => requireRangeInNetwork({ start, end }, net)).not.toThrow();
  });

  it('rejects a range whose first address is after its last', () => {
    expect(() => requireRangeInNetwork({ start: '10.232.0.20', end: '10.232.0.10' }, net)).toThrow(
      new InvalidInputError('invalid address range 10.232.0.20–10.232.0.10: the first address is after the last'),
    );
  });

  it.each([
    ['10.232.0.0', '10.232.0.10', 'starts at the network address'],
    ['10.232.0.10', '10.232.0.255', 'ends at the broadcast address'],
    ['10.231.255.250', '10.232.0.20', 'starts below the network'],
    ['10.232.0.10', '10.232.1.5', 'ends above the network'],
    ['10.233.0.10', '10.233.0.20', 'lies in another network'],
  ])('rejects %s–%s, which %s', (start, end) => {
    expect(() => requireRangeInNetwork({ start, end }, net)).toThrow(
      new InvalidInputError(
        `address range ${start}–${end} is not inside the bridge network 10.232.0.0/24 (without its network and broadcast addresses)`,
      ),
    );
  });

  it.each([
    ['10.232.0.1/24', '10.232.0.1', '10.232.0.20'],
    ['10.232.0.254/24', '10.232.0.10', '10.232.0.254'],
    ['10.232.0.100/24', '10.232.0.10', '10.232.0.254'],
  ])('rejects a range containing the bridge address of %s', (cidr, start, end) => {
    const bridgeNet = parseCidr(cidr);
    expect(() => requireRangeInNetwork({ start, end }, bridgeNet)).toThrow(
      new InvalidInputError(`address range ${start}–${end} contains the bridge's own address ${bridgeNet.address}`),
    );
  });

  it('rejects an invalid address in the range', () => {
    expect(() => requireRangeInNetwork({ start: '10.232.0.10', end: '10.232.0.300' }, net)).toThrow(
      'invalid IPv4 address "10.232.0.300": expected four numbers 0–255 separated by dots',
    );
  });
});

describe('defaultRange', () => {
  it.each([
    ['10.232.0.1/24', '10.232.0.10', '10.232.0.254'],
    ['10.232.0.5/24', '10.232.0.10', '10.232.0.254'],
    ['10.232.0.254/24', '10.232.0.10', '10.232.0.253'],
    ['10.232.0.100/24', '10.232.0.101', '10.232.0.254'],
    ['10.232.0.200/24', '10.232.0.10', '10.232.0.199'],
    ['10.0.0.1/16', '10.0.0.10', '10.0.255.254'],
    ['10.0.0.1/28', '10.0.0.6', '10.0.0.14'],
    ['10.0.0.1/29', '10.0.0.2', '10.0.0.6'],
    ['10.0.0.2/29', '10.0.0.3', '10.0.0.6'],
    ['10.0.0.1/30', '10.0.0.2', '10.0.0.2'],
    ['10.0.0.2/30', '10.0.0.1', '10.0.0.1'],
  ])('picks a range for %s', (cidr, start, end) => {
    expect(defaultRange(parseCidr(cidr))).toEqual({ start, end });
  });

  it('returns a range that passes requireRangeInNetwork wherever the bridge sits', () => {
    const networks = fc
      .integer({ min: 8, max: 30 })
      .chain((prefix) => fc.tuple(fc.constant(prefix), fc.integer({ min: 1, max: 2 ** (32 - prefix) - 2 })));
    fc.assert(
      fc.property(networks, ([prefix, offset]) => {
        const net = parseCidr(`${numberToIpv4(167_772_160 + offset)}/${prefix}`);
        expect(() => requireRangeInNetwork(defaultRange(net), net)).not.toThrow();
      }),
    );
  });
});
