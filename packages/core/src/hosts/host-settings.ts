import type { Actor } from '../audit/actor.js';
import { withAudit } from '../audit/audit-log.js';
import type { Host } from '../db/schema.js';
import { ConflictError } from '../errors/index.js';
import { networkHost } from '../network/host-network.js';
import { type NetworkSettings, type NetworkSettingsInput, resolveNetworkSettings } from '../network/network-settings.js';
import { checkTlsCertificate } from '../network/tls-certificate.js';
import { runnerForHost } from './host-connection.js';
import { getHost, type HostContext } from './hosts.js';

const TLS_SETTINGS: readonly (keyof NetworkSettings)[] = ['ha_domain', 'tls_certificate_path', 'tls_key_path'];
const TUNNEL_SETTINGS: readonly (keyof NetworkSettings)[] = ['tunnel_network', 'tunnel_port_start'];

/**
 * Changes a host's network settings. Nothing on the host changes until
 * `vome host apply` or the next server operation. A changed HA domain or
 * certificate is checked on the host first, so a certificate that does not
 * cover the domain is never recorded.
 *
 * @throws InvalidInputError for an invalid value or a certificate that does not fit.
 * @throws ConflictError when tunnel ranges change while servers use them.
 */
export async function setHostNetwork(context: HostContext, actor: Actor, name: string, input: NetworkSettingsInput): Promise<Host> {
  const host = await getHost(context.db, name);
  const settings = resolveNetworkSettings(host, input, host);
  const changed = (Object.keys(settings) as (keyof NetworkSettings)[]).filter((key) => settings[key] !== host[key]);
  if (changed.length === 0) {
    return host;
  }

  if (changed.some((key) => TUNNEL_SETTINGS.includes(key))) {
    const users = await context.db.selectFrom('servers').select('name').where('host_id', '=', host.id).where('tunnel_slot', 'is not', null).orderBy('name').execute();
    if (users.length > 0) {
      throw new ConflictError(
        `host "${name}" has servers with WireGuard interfaces (${users.map((server) => server.name).join(', ')}), so its tunnel network and ports cannot change`,
        { hints: ['move or destroy those servers first'], fields: { host: name } },
      );
    }
  }
  const updatedHost: Host = { ...host, ...settings };
  if (settings.ha_domain !== '' && changed.some((key) => TLS_SETTINGS.includes(key))) {
    const runner = runnerForHost(context.config, context.logger, host);
    try {
      await checkTlsCertificate(runner, networkHost(updatedHost));
    } finally {
      await runner.close();
    }
  }

  return withAudit(context.db, async (trx) => {
    const updated = await trx.updateTable('hosts').set(settings).where('id', '=', host.id).returningAll().executeTakeFirstOrThrow();
    const details = Object.fromEntries(changed.map((key) => [key, { from: host[key], to: settings[key] }]));
    return { result: updated, audit: { actor, action: 'host.set', target: { kind: 'host', id: host.id }, details: { name, ...details } } };
  });
}
