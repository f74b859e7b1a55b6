import type { Db } from '../db/connection.js';
import type { Host, ServerState } from '../db/schema.js';
import { HostNotReadyError } from '../errors/index.js';
import { ipv4ToNumber, numberToIpv4, parseCidr } from '../naming/ipv4.js';
import type { NetworkSettings } from './network-settings.js';
import { type NetworkHost, type NetworkModel, type NetworkServer, tapName } from './network-model.js';
import { networkDir, tunnelForSlot } from './tunnels.js';

/** States in which a server's network exists: its rules, map entry and tunnel. */
const NETWORKED_STATES: ReadonlySet<ServerState> = new Set(['provisioning', 'running', 'stopped', 'rebuilding', 'failed']);

/**
 * The state a server is about to reach, so that an operation applies the
 * network the server will have when it ends (suspend closes the routes,
 * destroy removes them) while its recorded state is still the old one.
 */
export interface ServerStateOverride {
  serverId: string;
  state: ServerState;
}

/**
 * Checks that a host has the settings its network needs.
 *
 * @throws HostNotReadyError naming each missing setting and the command that sets it.
 */
export function requireNetworkSettings(host: Host): void {
  const missing = [host.uplink === '' ? '--uplink' : null, host.ha_domain === '' ? '--ha-domain' : null].filter((flag) => flag !== null);
  if (missing.length > 0) {
    throw new HostNotReadyError(`host "${host.name}" has no network settings yet: ${missing.join(' and ')} missing`, {
      hints: [`set them with \`vome host set ${host.name} ${missing.map((flag) => `${flag} …`).join(' ')}\``],
      fields: { host: host.name },
    });
  }
}

/** Describes a host's edge from its record. */
export function networkHost(host: Pick<Host, 'name' | 'bridge' | 'bridge_cidr' | 'data_dir'> & NetworkSettings): NetworkHost {
  const bridge = parseCidr(host.bridge_cidr);
  return {
    name: host.name,
    bridge: host.bridge,
    bridgeAddress: bridge.address,
    bridgeNetwork: `${numberToIpv4(bridge.network)}/${bridge.prefix}`,
    uplink: host.uplink,
    blockedNetworks: host.blocked_networks === '' ? [] : host.blocked_networks.split(','),
    haDomain: host.ha_domain,
    tlsCertificatePath: host.tls_certificate_path,
    tlsKeyPath: host.tls_key_path,
    nginxSitePath: host.nginx_site_path,
    nginxMainConfigPath: host.nginx_main_config_path,
    networkDir: networkDir(host),
  };
}

/**
 * Builds the network a host should have from the database: every server on
 * it that is not suspended, destroying or destroyed, with its tunnel and
 * peers. With `override`, one server is taken to be in the given state.
 *
 * @throws HostNotReadyError when the host's uplink or HA domain is not set.
 */
export async function buildNetworkModel(db: Db, host: Host, override?: ServerStateOverride): Promise<NetworkModel> {
  requireNetworkSettings(host);
  const rows = await db.selectFrom('servers').selectAll().where('host_id', '=', host.id).where('state', '<>', 'destroyed').execute();
  const live = rows.filter((server) => NETWORKED_STATES.has(server.id === override?.serverId ? override.state : server.state));
  const peers =
    live.length === 0
      ? []
      : await db
          .selectFrom('tunnel_peers')
          .select(['server_id', 'name', 'public_key', 'ipv4'])
          .where(
            'server_id',
            'in',
            live.map((server) => server.id),
          )
          .execute();

  const servers: NetworkServer[] = live.map((server) => ({
    id: server.id,
    name: server.name,
    subdomain: server.subdomain,
    ipv4: server.ipv4,
    mac: server.mac.toLowerCase(),
    haPort: server.ha_port,
    tap: tapName(server.ipv4),
    tunnel:
      server.tunnel_slot === null || server.tunnel_public_key === null
        ? null
        : tunnelForSlot(
            host,
            server.tunnel_slot,
            server.tunnel_public_key,
            peers.filter((peer) => peer.server_id === server.id),
          ),
  }));
  servers.sort((left, right) => ipv4ToNumber(left.ipv4) - ipv4ToNumber(right.ipv4));
  return { host: networkHost(host), servers };
}
