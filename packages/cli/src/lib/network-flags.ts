import { Flags } from '@oclif/core';
import type { NetworkSettingsInput } from '@vome/core';

/** Flags that set a host's network: shared by `host add` and `host set`. */
export const networkFlags = {
  uplink: Flags.string({ summary: 'Interface that leads to the internet; VM traffic leaves through it with NAT. When enrolling, the default is the interface of the host\'s default route.' }),
  'ha-domain': Flags.string({ summary: 'Domain under which servers answer, as https://<subdomain>.<ha-domain>.' }),
  'tls-cert': Flags.string({ summary: 'Path on the host of the certificate chain covering *.<ha-domain> (PEM).' }),
  'tls-key': Flags.string({ summary: 'Path on the host of the certificate\'s private key (PEM).' }),
  'nginx-site': Flags.string({ summary: 'Path on the host of the nginx file vome writes, loaded in nginx\'s http block.' }),
  'nginx-config': Flags.string({ summary: 'Path on the host of nginx\'s main configuration file, for `nginx -t` and reloads.' }),
  'tunnel-network': Flags.string({ summary: 'IPv4 network from which each server gets a WireGuard /24, such as 10.100.0.0/16.' }),
  'tunnel-port-start': Flags.integer({ summary: 'UDP port of the first server\'s WireGuard interface; the next ones count up.' }),
  'blocked-networks': Flags.string({
    summary: 'Comma-separated IPv4 networks VMs may not reach through the uplink, or "none" (default: all private and shared ranges). 169.254.0.0/16 is always blocked.',
  }),
};

/** Turns parsed network flags into core's settings input. */
export function networkSettingsInput(flags: {
  uplink?: string;
  'ha-domain'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  'nginx-site'?: string;
  'nginx-config'?: string;
  'tunnel-network'?: string;
  'tunnel-port-start'?: number;
  'blocked-networks'?: string;
}): NetworkSettingsInput {
  return {
    uplink: flags.uplink,
    haDomain: flags['ha-domain'],
    tlsCertificatePath: flags['tls-cert'],
    tlsKeyPath: flags['tls-key'],
    nginxSitePath: flags['nginx-site'],
    nginxMainConfigPath: flags['nginx-config'],
    tunnelNetwork: flags['tunnel-network'],
    tunnelPortStart: flags['tunnel-port-start'],
    blockedNetworks: flags['blocked-networks'],
  };
}
