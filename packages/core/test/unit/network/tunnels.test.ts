import { describe, expect, it } from 'vitest';
import { pickFreePeerAddress, tunnelForSlot, tunnelSlotCount } from '../../../src/network/tunnels.js';

const HOST = { data_dir: '/var/lib/vome/host', tunnel_network: '10.100.0.0/16', tunnel_port_start: 51_820 };

describe('tunnelForSlot', () => {
  it('derives interface, port, table, network and key path from the slot', () => {
    const tunnel = tunnelForSlot(HOST, 3, 'PUBLIC', [{ name: 'phone', public_key: 'PEER', ipv4: '10.100.3.2' }]);
    expect(tunnel).toEqual({
      interface: 'vwg51823',
      listenPort: 51_823,
      table: 1_000_003,
      rulePriority: 10_003,
      network: '10.100.3.0/24',
      address: '10.100.3.1',
      publicKey: 'PUBLIC',
      privateKeyPath: '/var/lib/vome/host/network/wireguard/vwg51823.key',
      peers: [{ name: 'phone', publicKey: 'PEER', address: '10.100.3.2' }],
    });
  });

  it('crosses into the next /16 octet after slot 255', () => {
    expect(tunnelForSlot({ ...HOST, tunnel_network: '10.100.0.0/15' }, 256, 'K', []).network).toBe('10.101.0.0/24');
  });
});

describe('tunnelSlotCount', () => {
  it.each([
    ['10.100.0.0/16', 51_820, 256],
    ['10.100.0.0/24', 51_820, 1],
    ['10.0.0.0/8', 51_820, 13_716],
    ['10.100.0.0/16', 65_535, 1],
  ])('%s from port %d gives %d slots', (network, start, count) => {
    expect(tunnelSlotCount({ tunnel_network: network, tunnel_port_start: start })).toBe(count);
  });
});

describe('pickFreePeerAddress', () => {
  it('takes the lowest free address from .2', () => {
    const tunnel = tunnelForSlot(HOST, 0, 'K', [
      { name: 'a', public_key: 'A', ipv4: '10.100.0.2' },
      { name: 'b', public_key: 'B', ipv4: '10.100.0.4' },
    ]);
    expect(pickFreePeerAddress(tunnel, { name: 'kitchen' })).toBe('10.100.0.3');
  });

  it('fails when all 253 peer addresses are taken', () => {
    const peers = Array.from({ length: 253 }, (_, index) => ({ name: `p${index}`, public_key: `K${index}`, ipv4: `10.100.0.${index + 2}` }));
    expect(() => pickFreePeerAddress(tunnelForSlot(HOST, 0, 'K', peers), { name: 'kitchen' })).toThrow('server "kitchen" has no free WireGuard peer address in 10.100.0.0/24');
  });
});
