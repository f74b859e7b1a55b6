import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { parseTrustedProxies, rateLimitBucket, resolveClientAddress } from '../../../src/identity/client-address.js';

const familyOf = (address: string) => (address.includes(':') ? 'ipv6' : 'ipv4');

describe('parseTrustedProxies', () => {
  it.each([
    { list: '127.0.0.1', address: '127.0.0.1', trusted: true },
    { list: '127.0.0.1', address: '127.0.0.2', trusted: false },
    { list: '10.0.0.0/8', address: '10.0.0.0', trusted: true },
    { list: '10.0.0.0/8', address: '10.255.255.255', trusted: true },
    { list: '10.0.0.0/8', address: '11.0.0.0', trusted: false },
    { list: '10.0.0.0/8', address: '9.255.255.255', trusted: false },
    { list: '192.168.4.0/24', address: '192.168.4.200', trusted: true },
    { list: '192.168.4.0/24', address: '192.168.5.1', trusted: false },
    { list: '203.0.113.7/32', address: '203.0.113.7', trusted: true },
    { list: '203.0.113.7/32', address: '203.0.113.8', trusted: false },
    { list: '::1', address: '::1', trusted: true },
    { list: '::1', address: '::2', trusted: false },
    { list: 'fd00::/8', address: 'fd12:3456::1', trusted: true },
    { list: 'fd00::/8', address: 'fe80::1', trusted: false },
    { list: '2001:db8::/32', address: '2001:db8:ffff::9', trusted: true },
    { list: '2001:db8::/32', address: '2001:db9::1', trusted: false },
    { list: ' 127.0.0.1 , , 10.0.0.0/8 ', address: '10.1.2.3', trusted: true },
    { list: ' 127.0.0.1 , , 10.0.0.0/8 ', address: '127.0.0.1', trusted: true },
    { list: ' 127.0.0.1 , , 10.0.0.0/8 ', address: '172.16.0.1', trusted: false },
    { list: '', address: '127.0.0.1', trusted: false },
    { list: '', address: '::1', trusted: false },
  ])('$list trusts $address: $trusted', ({ list, address, trusted }) => {
    expect(parseTrustedProxies(list).check(address, familyOf(address))).toBe(trusted);
  });

  it.each([
    { list: 'localhost', entry: 'localhost' },
    { list: '127.0.0.1, proxy.internal', entry: 'proxy.internal' },
    { list: '256.0.0.1', entry: '256.0.0.1' },
    { list: '10.0.0', entry: '10.0.0' },
    { list: '10.0.0.0/33', entry: '10.0.0.0/33' },
    { list: '10.0.0.0/-1', entry: '10.0.0.0/-1' },
    { list: '10.0.0.0/8.5', entry: '10.0.0.0/8.5' },
    { list: '10.0.0.0/abc', entry: '10.0.0.0/abc' },
    { list: '::1/129', entry: '::1/129' },
    { list: '/8', entry: '/8' },
    { list: '[::1]', entry: '[::1]' },
    { list: '127.0.0.1:8080', entry: '127.0.0.1:8080' },
    // An empty or doubled prefix must not be read as /0, which would trust every address.
    { list: '10.0.0.0/', entry: '10.0.0.0/' },
    { list: '10.0.0.0/8/16', entry: '10.0.0.0/8/16' },
  ])('rejects malformed entry $entry', ({ list, entry }) => {
    expect(() => parseTrustedProxies(list)).toThrow(InvalidInputError);
    expect(() => parseTrustedProxies(list)).toThrow(`invalid trusted proxy "${entry}": use comma-separated IP addresses or networks, such as 127.0.0.1,10.0.0.0/8`);
  });
});

describe('resolveClientAddress', () => {
  const trusted = parseTrustedProxies('127.0.0.1, 10.0.0.0/8, ::1');

  it.each([
    // No proxy in front: the TCP peer is the client.
    { peer: '203.0.113.5', forwardedFor: null, client: '203.0.113.5' },
    { peer: '203.0.113.5', forwardedFor: undefined, client: '203.0.113.5' },
    { peer: ' 203.0.113.5 ', forwardedFor: null, client: '203.0.113.5' },
    { peer: '::ffff:203.0.113.5', forwardedFor: null, client: '203.0.113.5' },
    { peer: '::FFFF:203.0.113.5', forwardedFor: null, client: '203.0.113.5' },
    { peer: '2001:db8::1', forwardedFor: null, client: '2001:db8::1' },

    // An untrusted peer's X-Forwarded-For is ignored, whatever it contains.
    { peer: '203.0.113.5', forwardedFor: '198.51.100.1', client: '203.0.113.5' },
    { peer: '203.0.113.5', forwardedFor: '10.0.0.2', client: '203.0.113.5' },
    { peer: '::ffff:203.0.113.5', forwardedFor: '198.51.100.1', client: '203.0.113.5' },
    { peer: '2001:db8::1', forwardedFor: '2001:db8::7', client: '2001:db8::1' },
    { peer: '127.0.0.2', forwardedFor: '198.51.100.1', client: '127.0.0.2' },

    // A trusted peer without a usable X-Forwarded-For is the client itself.
    { peer: '127.0.0.1', forwardedFor: null, client: '127.0.0.1' },
    { peer: '127.0.0.1', forwardedFor: '', client: '127.0.0.1' },
    { peer: '127.0.0.1', forwardedFor: '   ', client: '127.0.0.1' },
    { peer: '127.0.0.1', forwardedFor: 'unknown', client: '127.0.0.1' },

    // A trusted peer, IPv4-mapped or IPv6, passes on the address its client had.
    { peer: '127.0.0.1', forwardedFor: '198.51.100.1', client: '198.51.100.1' },
    { peer: '::ffff:127.0.0.1', forwardedFor: '198.51.100.1', client: '198.51.100.1' },
    { peer: '10.20.30.40', forwardedFor: '198.51.100.1', client: '198.51.100.1' },
    { peer: '::1', forwardedFor: '2001:db8::7', client: '2001:db8::7' },
    { peer: '::1', forwardedFor: '198.51.100.1', client: '198.51.100.1' },
    { peer: '127.0.0.1', forwardedFor: ' 198.51.100.1 ', client: '198.51.100.1' },
    { peer: '127.0.0.1', forwardedFor: '::ffff:198.51.100.1', client: '198.51.100.1' },

    // Entries a client wrote left of the address the proxy appended are never reached.
    { peer: '127.0.0.1', forwardedFor: '1.2.3.4, 198.51.100.1', client: '198.51.100.1' },
    { peer: '127.0.0.1', forwardedFor: '10.9.9.9, 198.51.100.1', client: '198.51.100.1' },
    { peer: '127.0.0.1', forwardedFor: 'garbage, 198.51.100.1', client: '198.51.100.1' },

    // A chain of trusted proxies is walked from the right to the first untrusted hop.
    { peer: '127.0.0.1', forwardedFor: '198.51.100.1, 10.0.0.2', client: '198.51.100.1' },
    { peer: '127.0.0.1', forwardedFor: '1.2.3.4, 198.51.100.1, 10.0.0.2, 10.0.0.3', client: '198.51.100.1' },
    { peer: '::1', forwardedFor: '2001:db8::7, 10.0.0.2', client: '2001:db8::7' },
    { peer: '127.0.0.1', forwardedFor: '198.51.100.1,10.0.0.2,10.0.0.3', client: '198.51.100.1' },

    // When every hop is trusted, the farthest one is the client.
    { peer: '127.0.0.1', forwardedFor: '10.0.0.2, 10.0.0.3', client: '10.0.0.2' },
    { peer: '127.0.0.1', forwardedFor: '127.0.0.1', client: '127.0.0.1' },

    // A malformed hop stops the walk at the last address a trusted proxy saw.
    { peer: '127.0.0.1', forwardedFor: '198.51.100.1, garbage', client: '127.0.0.1' },
    { peer: '127.0.0.1', forwardedFor: 'garbage, 10.0.0.2', client: '10.0.0.2' },
    { peer: '127.0.0.1', forwardedFor: '198.51.100.1, , 10.0.0.2', client: '10.0.0.2' },
    { peer: '127.0.0.1', forwardedFor: '198.51.100.1:4711', client: '127.0.0.1' },
    { peer: '127.0.0.1', forwardedFor: '[2001:db8::7]', client: '127.0.0.1' },
    { peer: '127.0.0.1', forwardedFor: '198.51.100.1, 10.0.0.2:443', client: '127.0.0.1' },
    { peer: '127.0.0.1', forwardedFor: '999.1.1.1', client: '127.0.0.1' },
  ])('$peer with X-Forwarded-For $forwardedFor is $client', ({ peer, forwardedFor, client }) => {
    expect(resolveClientAddress(peer, forwardedFor, trusted)).toBe(client);
  });

  it('trusts no X-Forwarded-For without proxies', () => {
    expect(resolveClientAddress('127.0.0.1', '198.51.100.1', parseTrustedProxies(''))).toBe('127.0.0.1');
  });
});

describe('rateLimitBucket', () => {
  it.each([
    ['203.0.113.9', '203.0.113.9'],
    ['::ffff:192.0.2.5', '192.0.2.5'],
    ['::ffff:c000:205', '192.0.2.5'],
    ['0:0:0:0:0:ffff:c000:0205', '192.0.2.5'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::6', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1:2:3:4', 'fe80:0:0:0::/64'],
  ])('keys %s as %s', (address, bucket) => {
    expect(rateLimitBucket(address)).toBe(bucket);
  });
});
