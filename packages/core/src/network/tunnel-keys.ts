import type { Db } from '../db/connection.js';
import type { Host, Server } from '../db/schema.js';
import type { CommandRunner } from '../runner/command-runner.js';
import { shellQuote as q } from '../runner/command-runner.js';
import { pickFreeTunnelSlot, tunnelForSlot } from './tunnels.js';
import { generateWireguardKeyPair } from './wireguard-keys.js';
import { writeTunnelKey } from './wireguard-host.js';

/**
 * Gives a server a fresh WireGuard key pair: the private key is made here,
 * written to the host and kept nowhere else, and the public key is stored.
 * A server without a tunnel slot gets one first. Run again after a kill, it
 * makes another pair, which is as good as the first.
 */
export async function rekeyTunnel(db: Db, runner: CommandRunner, host: Host, server: Pick<Server, 'id'>): Promise<void> {
  const current = await db.selectFrom('servers').select('tunnel_slot').where('id', '=', server.id).executeTakeFirstOrThrow();
  let slot = current.tunnel_slot;
  if (slot === null) {
    slot = await db.transaction().execute(async (trx) => {
      const picked = await pickFreeTunnelSlot(trx, host);
      await trx.updateTable('servers').set({ tunnel_slot: picked }).where('id', '=', server.id).execute();
      return picked;
    });
  }

  const keys = generateWireguardKeyPair();
  await writeTunnelKey(runner, tunnelForSlot(host, slot, keys.publicKey, []), keys.privateKey);
  await db.updateTable('servers').set({ tunnel_public_key: keys.publicKey, updated_at: new Date() }).where('id', '=', server.id).execute();
}

/** Deletes a server's private WireGuard key from the host; nothing to do without a slot. */
export async function removeTunnelKey(db: Db, runner: CommandRunner, host: Host, server: Pick<Server, 'id'>): Promise<void> {
  const current = await db.selectFrom('servers').select('tunnel_slot').where('id', '=', server.id).executeTakeFirstOrThrow();
  if (current.tunnel_slot === null) {
    return;
  }
  const tunnel = tunnelForSlot(host, current.tunnel_slot, '', []);
  await runner.run(`rm -f ${q(tunnel.privateKeyPath)}`, { label: 'remove-tunnel-key', timeoutMs: 30_000 });
}
