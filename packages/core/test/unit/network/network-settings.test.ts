import { describe, expect, it } from 'vitest';
import { DEFAULT_NETWORK_SETTINGS, resolveNetworkSettings } from '../../../src/network/network-settings.js';

const HOST = { name: 'ha-1', bridge: 'br-haos', bridge_cidr: '10.232.0.1/24', ssh_address: '192.168.7.10' };

describe('resolveNetworkSettings', () => {
  it('keeps current values that the input leaves out', () => {
    const settings = resolveNetworkSettings(DEFAULT_NETWORK_SETTINGS, { uplink: 'eth0', haDomain: 'HA.Example.com.' }, HOST);
    expect(settings).toEqual({ ...DEFAULT_NETWORK_SETTINGS, uplink: 'eth0', ha_domain: 'ha.example.com' });
  });

  it('accepts "none" for no blocked networks', () => {
    expect(resolveNetworkSettings(DEFAULT_NETWORK_SETTINGS, { blockedNetworks: 'none' }, HOST).blocked_networks).toBe('');
  });

  it('accepts an aligned tunnel network outside the bridge network', () => {
    expect(resolveNetworkSettings(DEFAULT_NETWORK_SETTINGS, { tunnelNetwork: '10.200.0.0/20' }, HOST).tunnel_network).toBe('10.200.0.0/20');
  });

  it.each([
    [{ uplink: 'br-haos' }, 'invalid uplink "br-haos": it is the VM bridge'],
    [{ uplink: 'eth0; rm' }, 'invalid uplink "eth0; rm"'],
    [{ uplink: 'vwg51820' }, 'belong to vome\'s own VM and WireGuard devices'],
    [{ uplink: 'vm0ae8000c' }, 'belong to vome\'s own VM and WireGuard devices'],
    [{ haDomain: 'localhost' }, 'invalid HA domain "localhost"'],
    [{ haDomain: 'ha_example.com' }, 'invalid HA domain "ha_example.com"'],
    [{ tlsCertificatePath: 'certs/fullchain.pem' }, 'invalid TLS certificate path'],
    [{ tlsKeyPath: '/etc/ssl/../shadow' }, 'invalid TLS key path'],
    [{ nginxSitePath: '/etc/nginx/conf.d/vome conf' }, 'invalid nginx site path'],
    [{ nginxSitePath: '/etc/nginx/conf.d/vome' }, 'the file name must end in .conf'],
    [{ tunnelNetwork: '10.232.0.0/16' }, 'it overlaps the bridge network 10.232.0.0/24'],
    [{ tunnelNetwork: '10.232.0.128/25' }, 'it must be a /24 or larger'],
    [{ tunnelNetwork: '10.100.1.0/16' }, 'did you mean 10.100.0.0/16?'],
    [{ tunnelNetwork: '192.168.7.0/24' }, "it contains the host's SSH address 192.168.7.10"],
    [{ tunnelNetwork: '127.0.0.0/8' }, 'use a range inside 10.0.0.0/8'],
    [{ tunnelNetwork: '8.8.0.0/16' }, 'use a range inside 10.0.0.0/8'],
    [{ tunnelNetwork: '169.254.0.0/16' }, 'use a range inside 10.0.0.0/8'],
    [{ uplink: '-x' }, 'invalid uplink "-x"'],
    [{ blockedNetworks: '192.168.1.0/16' }, 'did you mean 192.168.0.0/16?'],
    [{ blockedNetworks: '10.0.0.0/8,nonsense' }, 'invalid network "nonsense"'],
    [{ tunnelPortStart: 80 }, 'invalid tunnel port start 80'],
  ])('rejects %o', (input, message) => {
    expect(() => resolveNetworkSettings(DEFAULT_NETWORK_SETTINGS, input, HOST)).toThrow(message);
  });
});
