import { sql } from 'kysely';
import type { Actor } from '../audit/actor.js';
import { withAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { TunnelPeer } from '../db/schema.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors/index.js';
import { runnerForHost } from '../hosts/host-connection.js';
import type { HostContext } from '../hosts/hosts.js';
import { requireDnsLabel } from '../naming/dns-label.js';
import { getServer, type ServerView } from '../servers/servers.js';
import { applyNetworkForOperation } from './network-apply.js';
import type { NetworkTunnel } from './network-model.js';
import { pickFreePeerAddress, tunnelForSlot } from './tunnels.js';
import { requireWireguardKey } from './wireguard-keys.js';

export interface AddTunnelPeerInput {
  server: string;
  /** A DNS label, unique per server. */
  name: string;
  /** The peer's public key: 44 characters of standard base64. */
  publicKey: string;
}

export interface TunnelPeerResult {
  peer: TunnelPeer;
  server: string;
  /** The server's VM address, which the peer reaches through the tunnel. */
  serverAddress: string;
  /** The server's interface as the peer must know it: port, public key, network. */
  tunnel: NetworkTunnel;
}

/**
 * Adds a WireGuard peer to a server's interface at the next free /32 of the
 * server's /24, and applies the host's network so the peer can connect.
 *
 * @throws InvalidInputError for a bad name or key, ConflictError for a duplicate.
 */
export async function addTunnelPeer(context: HostContext, actor: Actor, input: AddTunnelPeerInput): Promise<TunnelPeerResult> {
  const name = requireDnsLabel('peer name', input.name);
  const publicKey = requireWireguardKey(input.publicKey.trim(), 'peer public key');
  const server = await getServer(context.db, input.server);
  const tunnel = await serverTunnel(context.db, server);
  if (publicKey === tunnel.publicKey) {
    throw new InvalidInputError(`invalid peer public key: it is the public key of server "${server.name}" itself; give the key of the peer's own key pair`);
  }

  const peer = await withAudit(context.db, async (trx) => {
    // Locks the server row, so two peers added at once get different addresses.
    await sql`SELECT id FROM servers WHERE id = ${server.id} FOR UPDATE`.execute(trx);
    const peers = await trx.selectFrom('tunnel_peers').selectAll().where('server_id', '=', server.id).execute();
    if (peers.some((existing) => existing.name === name)) {
      throw new ConflictError(`server "${server.name}" already has a peer named "${name}"`, { hints: ['pick another name, or remove the old peer first'] });
    }
    if (peers.some((existing) => existing.public_key === publicKey)) {
      throw new ConflictError(`server "${server.name}" already has a peer with this public key`, { hints: ['each peer needs its own key pair'] });
    }
    const address = pickFreePeerAddress({ ...tunnel, peers: peers.map((existing) => ({ name: existing.name, publicKey: existing.public_key, address: existing.ipv4 })) }, server);
    const inserted = await trx.insertInto('tunnel_peers').values({ server_id: server.id, name, public_key: publicKey, ipv4: address }).returningAll().executeTakeFirstOrThrow();
    return {
      result: inserted,
      audit: { actor, action: 'server.peer.add', target: { kind: 'server', id: server.id }, details: { server: server.name, peer: name, address, publicKey } },
    };
  });

  await applyServerHost(context, server);
  return { peer, server: server.name, serverAddress: server.ipv4, tunnel: { ...tunnel, peers: [...tunnel.peers, { name, publicKey, address: peer.ipv4 }] } };
}

/**
 * Removes a WireGuard peer from a server and applies the host's network, so
 * the peer's key no longer connects.
 *
 * @throws NotFoundError when the server has no peer of that name.
 */
export async function removeTunnelPeer(context: HostContext, actor: Actor, serverName: string, peerName: string): Promise<TunnelPeer> {
  const server = await getServer(context.db, serverName);
  const peer = await withAudit(context.db, async (trx) => {
    const removed = await trx.deleteFrom('tunnel_peers').where('server_id', '=', server.id).where('name', '=', peerName).returningAll().executeTakeFirst();
    if (!removed) {
      throw new NotFoundError('peer', peerName, { hints: [`run \`vome server peer list ${server.name}\``], fields: { server: server.name } });
    }
    return {
      result: removed,
      audit: { actor, action: 'server.peer.remove', target: { kind: 'server', id: server.id }, details: { server: server.name, peer: peerName, address: removed.ipv4 } },
    };
  });
  await applyServerHost(context, server);
  return peer;
}

/** Lists a server's WireGuard peers by name. */
export async function listTunnelPeers(db: Db, serverName: string): Promise<{ server: string; tunnel: NetworkTunnel }> {
  const server = await getServer(db, serverName);
  return { server: server.name, tunnel: await serverTunnel(db, server) };
}

async function serverTunnel(db: Db, server: ServerView): Promise<NetworkTunnel> {
  if (server.tunnel_slot === null || server.tunnel_public_key === null) {
    throw new ConflictError(`server "${server.name}" has no WireGuard interface yet`, {
      hints: [`finish its creation with \`vome server create ${server.name} …\`, or rebuild it`],
      fields: { server: server.name },
    });
  }
  const host = await db.selectFrom('hosts').selectAll().where('id', '=', server.host_id).executeTakeFirstOrThrow();
  const peers = await db.selectFrom('tunnel_peers').selectAll().where('server_id', '=', server.id).execute();
  return tunnelForSlot(host, server.tunnel_slot, server.tunnel_public_key, peers);
}

async function applyServerHost(context: HostContext, server: ServerView): Promise<void> {
  const host = await context.db.selectFrom('hosts').selectAll().where('id', '=', server.host_id).executeTakeFirstOrThrow();
  const runner = runnerForHost(context.config, context.logger, host);
  try {
    await applyNetworkForOperation(context.db, runner, host);
  } finally {
    await runner.close();
  }
}
