import { sql, type Transaction } from 'kysely';
import type { Database, Host, Server, TunnelPeer } from '../db/schema.js';
import { ConflictError } from '../errors/index.js';
import { numberToIpv4, parseCidr } from '../naming/ipv4.js';
import type { NetworkTunnel } from './network-model.js';

/** Priority of slot 0's `ip rule`s; slot n uses this plus n. */
const RULE_PRIORITY_BASE = 10_000;

/**
 * Routing table of slot 0; slot n uses this plus n. It is far from the small
 * numbers admins pick and from wg-quick's default table, 51820.
 */
const TABLE_BASE = 1_000_000;

/** Returns the folder on the host where vome keeps its network state. */
export function networkDir(host: Pick<Host, 'data_dir'>): string {
  return `${host.data_dir}/network`;
}

/**
 * Returns how many per-server /24s a host can hand out: one per /24 of its
 * tunnel network, and no more than listen ports up to 65535.
 */
export function tunnelSlotCount(host: Pick<Host, 'tunnel_network' | 'tunnel_port_start'>): number {
  const network = parseCidr(host.tunnel_network);
  const subnets = 2 ** Math.max(0, 24 - network.prefix);
  return Math.min(subnets, 65_536 - host.tunnel_port_start);
}

/**
 * Describes the WireGuard interface of a server's slot: interface vwg<port>,
 * its own routing table, the slot's /24 of the tunnel network with the host
 * at .1, and peers at their own /32s.
 *
 * @example
 * // tunnel network 10.100.0.0/16, ports from 51820, slot 3:
 * // vwg51823, table 1000003, 10.100.3.0/24, host address 10.100.3.1
 */
export function tunnelForSlot(
  host: Pick<Host, 'data_dir' | 'tunnel_network' | 'tunnel_port_start'>,
  slot: number,
  publicKey: string,
  peers: Pick<TunnelPeer, 'name' | 'public_key' | 'ipv4'>[],
): NetworkTunnel {
  const base = parseCidr(host.tunnel_network).network + slot * 256;
  const listenPort = host.tunnel_port_start + slot;
  const name = `vwg${listenPort}`;
  return {
    interface: name,
    listenPort,
    table: TABLE_BASE + slot,
    rulePriority: RULE_PRIORITY_BASE + slot,
    network: `${numberToIpv4(base)}/24`,
    address: numberToIpv4(base + 1),
    publicKey,
    privateKeyPath: `${networkDir(host)}/wireguard/${name}.key`,
    peers: peers
      .map((peer) => ({ name: peer.name, publicKey: peer.public_key, address: peer.ipv4 }))
      .sort((left, right) => left.name.localeCompare(right.name)),
  };
}

/**
 * Picks the lowest free tunnel slot on a host. Call inside the transaction
 * that stores it: the host row is locked, so two servers cannot pick the
 * same slot.
 */
export async function pickFreeTunnelSlot(trx: Transaction<Database>, host: Host): Promise<number> {
  await sql`SELECT id FROM hosts WHERE id = ${host.id} FOR UPDATE`.execute(trx);
  const taken = await trx.selectFrom('servers').select('tunnel_slot').where('host_id', '=', host.id).where('tunnel_slot', 'is not', null).execute();
  const used = new Set(taken.map((row) => row.tunnel_slot));
  const count = tunnelSlotCount(host);
  for (let slot = 0; slot < count; slot += 1) {
    if (!used.has(slot)) {
      return slot;
    }
  }
  throw new ConflictError(`host "${host.name}" has no free WireGuard slot: all ${count} /24s of ${host.tunnel_network} are in use`, {
    hints: ['give the host a larger tunnel network with `vome host set --tunnel-network`', 'or place the server on another host'],
    fields: { host: host.name },
  });
}

/** Returns the lowest free peer address in a tunnel's /24 (.2 to .254). */
export function pickFreePeerAddress(tunnel: NetworkTunnel, server: Pick<Server, 'name'>): string {
  const base = parseCidr(tunnel.network).network;
  const used = new Set(tunnel.peers.map((peer) => peer.address));
  for (let host = 2; host <= 254; host += 1) {
    const candidate = numberToIpv4(base + host);
    if (!used.has(candidate)) {
      return candidate;
    }
  }
  throw new ConflictError(`server "${server.name}" has no free WireGuard peer address in ${tunnel.network}`, {
    hints: ['remove a peer with `vome server peer remove`'],
  });
}
