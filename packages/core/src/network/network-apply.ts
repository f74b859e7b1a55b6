import { sql } from 'kysely';
import type { Actor } from '../audit/actor.js';
import { appendAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { Host } from '../db/schema.js';
import { runnerForHost } from '../hosts/host-connection.js';
import { getHost, type HostContext } from '../hosts/hosts.js';
import { VomeError } from '../errors/index.js';
import type { CommandRunner } from '../runner/command-runner.js';
import { applyFirewall, diffFirewall, readFirewall, renderFirewall } from './firewall-host.js';
import { buildNetworkModel, type ServerStateOverride } from './host-network.js';
import type { NetworkModel, NetworkPart, PlanChange } from './network-model.js';
import { applyNginx, diffNginx, readNginx } from './nginx-host.js';
import { renderNginxSite } from './nginx-config.js';
import { checkTlsCertificate } from './tls-certificate.js';
import { applyWireguard, diffWireguard, readWireguard } from './wireguard-host.js';

export interface NetworkPlan {
  host: string;
  /** Differences between the host and the database; empty when in step. */
  changes: PlanChange[];
  roundTrips: number;
}

export interface NetworkApplyResult {
  host: string;
  /** Differences the host had before the apply. */
  changes: PlanChange[];
  /** Per part, whether the apply changed it on the host. */
  changed: Record<NetworkPart, boolean>;
  roundTrips: number;
}

// Advisory-lock class for "one network apply per host at a time"; the second
// key is derived from the host id. Server operations take their server's
// lock first and this one second, and nothing takes them the other way round.
const HOST_NETWORK_LOCK_CLASS = 7_150_003;

/**
 * Compares a host's firewall, nginx map and WireGuard interfaces with the
 * ones the database describes.
 *
 * @throws HostNotReadyError when the host's network settings are missing.
 */
export async function planHostNetwork(context: HostContext, name: string): Promise<NetworkPlan> {
  const host = await getHost(context.db, name);
  const model = await buildNetworkModel(context.db, host);
  const runner = runnerForHost(context.config, context.logger, host);
  try {
    const changes = await diffHost(runner, model);
    return { host: host.name, changes, roundTrips: runner.roundTrips };
  } finally {
    await runner.close();
  }
}

/**
 * Brings a host's network in line with the database: applies the firewall,
 * WireGuard, and, after checking the TLS certificate, nginx. Each part
 * changes nothing when already right, and a failing part does not stop the
 * others. Records an audit event when something changed.
 *
 * @throws InvalidInputError when the certificate does not fit the HA domain or
 *   nginx rejects the configuration; nginx keeps its working configuration.
 */
export async function applyHostNetwork(context: HostContext, actor: Actor, name: string): Promise<NetworkApplyResult> {
  const host = await getHost(context.db, name);
  const runner = runnerForHost(context.config, context.logger, host);
  try {
    const result = await withHostNetworkLock(context.db, host, async (db) => {
      const model = await buildNetworkModel(db, host);
      const changes = await diffHost(runner, model);
      const changed = await applyModel(runner, model);
      return { host: host.name, changes, changed, roundTrips: runner.roundTrips };
    });
    if (Object.values(result.changed).some(Boolean)) {
      await appendAudit(context.db, {
        actor,
        action: 'host.network.apply',
        target: { kind: 'host', id: host.id },
        details: { name: host.name, added: countChanges(result.changes, 'add'), removed: countChanges(result.changes, 'remove'), changed: result.changed },
      });
    }
    return result;
  } finally {
    await runner.close();
  }
}

/**
 * Applies the network of the host a server operation runs on, with the
 * server taken to be in the state the operation leads to. Used by the
 * operation's `apply-network` step.
 */
export async function applyNetworkForOperation(db: Db, runner: CommandRunner, host: Host, override?: ServerStateOverride): Promise<void> {
  await withHostNetworkLock(db, host, async (locked) => {
    const model = await buildNetworkModel(locked, host, override);
    await applyModel(runner, model);
  });
}

async function diffHost(runner: CommandRunner, model: NetworkModel): Promise<PlanChange[]> {
  const firewall = diffFirewall(renderFirewall(model), await readFirewall(runner, model));
  const nginx = diffNginx(renderNginxSite(model), await readNginx(runner, model));
  const wireguard = diffWireguard(model, await readWireguard(runner, model));
  return [...firewall, ...nginx, ...wireguard];
}

async function applyModel(runner: CommandRunner, model: NetworkModel): Promise<Record<NetworkPart, boolean>> {
  const changed: Record<NetworkPart, boolean> = { firewall: false, nginx: false, wireguard: false };
  const failures: unknown[] = [];
  // Each part is applied even when another fails, so that removing a server
  // or a peer reaches the firewall and WireGuard when, say, the certificate
  // has expired. The certificate is checked before nginx only.
  try {
    changed.firewall = (await applyFirewall(runner, model)).changed;
  } catch (error) {
    failures.push(error);
  }
  try {
    changed.wireguard = (await applyWireguard(runner, model)).changed;
  } catch (error) {
    failures.push(error);
  }
  try {
    await checkTlsCertificate(runner, model.host);
    changed.nginx = (await applyNginx(runner, model)).changed;
  } catch (error) {
    failures.push(error);
  }

  const [first, ...others] = failures;
  if (first !== undefined) {
    if (first instanceof VomeError && others.length > 0) {
      first.fields.otherFailures = others.map((error) => (error instanceof Error ? error.message : String(error)));
    }
    throw first;
  }
  return changed;
}

/**
 * Runs `work` under the host's network lock. `work` must query through the
 * connection it is given: when `db` is itself one connection (a step of an
 * operation), Kysely queues every other query on it until `work` ends.
 */
async function withHostNetworkLock<T>(db: Db, host: Host, work: (connection: Db) => Promise<T>): Promise<T> {
  return db.connection().execute(async (connection) => {
    await sql`SELECT pg_advisory_lock(${HOST_NETWORK_LOCK_CLASS}, hashtext(${host.id}))`.execute(connection);
    try {
      return await work(connection);
    } finally {
      await sql`SELECT pg_advisory_unlock(${HOST_NETWORK_LOCK_CLASS}, hashtext(${host.id}))`.execute(connection);
    }
  });
}

function countChanges(changes: PlanChange[], action: PlanChange['action']): number {
  return changes.filter((change) => change.action === action).length;
}
