import type { Actor } from '../audit/actor.js';
import { withAudit } from '../audit/audit-log.js';
import type { VomeConfig } from '../config/config.js';
import type { Db } from '../db/connection.js';
import type { Host, VirtType } from '../db/schema.js';
import { ConflictError, HostNotReadyError, InvalidInputError, NotFoundError } from '../errors/index.js';
import type { Logger } from '../logging/logger.js';
import { fingerprint, parseHostKey } from '../runner/host-key.js';
import { requireDnsLabel } from '../naming/dns-label.js';
import { defaultRange, parseCidr, requireRangeInNetwork } from '../naming/ipv4.js';
import { openRunner, runnerForHost } from './host-connection.js';
import { networkHost } from '../network/host-network.js';
import { DEFAULT_NETWORK_SETTINGS, type NetworkSettings, type NetworkSettingsInput, resolveNetworkSettings } from '../network/network-settings.js';
import { checkTlsCertificate } from '../network/tls-certificate.js';
import { type HostFacts, hostProblems, probeHost } from './host-probe.js';

export interface AddHostInput {
  name: string;
  transport: 'ssh' | 'local';
  address?: string;
  port?: number;
  user?: string;
  /** The key to pin, as an OpenSSH public key line. Required for SSH. */
  hostKey?: string;
  bridge?: string;
  dataDir?: string;
  rangeStart?: string;
  rangeEnd?: string;
  /** Overrides KVM detection. */
  virtType?: VirtType;
  /** The uplink defaults to the interface of the host's default route. */
  network?: NetworkSettingsInput;
}

export interface HostContext {
  db: Db;
  config: VomeConfig;
  logger: Logger;
}

export interface HostCheck {
  host: Host;
  facts: HostFacts;
  problems: string[];
  roundTrips: number;
}

const DEFAULT_BRIDGE = 'br-haos';
const DEFAULT_DATA_DIR = '/var/lib/vome/host';

function requireAbsolutePath(field: string, value: string): string {
  // The path ends up in host scripts, systemd units and nginx files, so it is
  // limited to characters that need no quoting in any of them.
  if (!/^\/[A-Za-z0-9._/@+-]*$/.test(value) || value.split('/').includes('..')) {
    throw new InvalidInputError(`invalid ${field} "${value}": use an absolute path of letters, digits and . _ / @ + - without ".." parts`);
  }
  return value.replace(/\/+$/, '') || '/';
}

function requireInterfaceName(value: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(value)) {
    throw new InvalidInputError(`invalid bridge name "${value}": use 1–15 letters, digits, '.', '_' or '-'`);
  }
  return value;
}

/**
 * Enrols a host: connects with the given pinned key, probes libvirt, qemu-img,
 * OVMF, the bridge, DHCP and KVM in one round trip, and records the host.
 * Nothing is recorded when the host is not ready.
 *
 * @throws HostKeyMismatchError when the host presents another key.
 * @throws HostNotReadyError listing everything the host lacks.
 */
export async function addHost(context: HostContext, actor: Actor, input: AddHostInput): Promise<HostCheck> {
  const name = requireDnsLabel('host name', input.name);
  const bridge = requireInterfaceName(input.bridge ?? DEFAULT_BRIDGE);
  const dataDir = requireAbsolutePath('data folder', input.dataDir ?? DEFAULT_DATA_DIR);
  if (input.transport === 'ssh') {
    if (input.port !== undefined && (!Number.isInteger(input.port) || input.port < 1 || input.port > 65_535)) {
      throw new InvalidInputError(`invalid SSH port ${input.port}: use a whole number from 1 to 65535`);
    }
    if (input.user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(input.user)) {
      throw new InvalidInputError(`invalid SSH user "${input.user}": use a Linux user name such as root`);
    }
    if (!input.address) {
      throw new InvalidInputError('an SSH host needs an address: pass --address');
    }
    if (!input.hostKey) {
      throw new InvalidInputError('an SSH host needs a pinned key: pass --host-key, or run on a terminal to confirm the key shown');
    }
    parseHostKey(input.hostKey);
  }
  const existing = await context.db.selectFrom('hosts').select('id').where('name', '=', name).where('removed_at', 'is', null).executeTakeFirst();
  if (existing) {
    throw new ConflictError(`host "${name}" already exists`, { hints: [`run \`vome host show ${name}\`, or pick another name`] });
  }

  const endpoint = {
    name,
    transport: input.transport,
    sshAddress: input.address ?? null,
    sshPort: input.port ?? 22,
    sshUser: input.user ?? 'root',
    hostKey: input.hostKey ?? null,
  };
  const runner = openRunner(context.config, context.logger, endpoint);
  let facts: HostFacts;
  let range: { start: string; end: string };
  let network: NetworkSettings;
  try {
    facts = await probeHost(runner, bridge, dataDir, input.virtType === undefined);
    const problems = hostProblems(facts);
    if (problems.length > 0) {
      throw new HostNotReadyError(`host "${name}" is not ready: ${problems.join('; ')}`, { fields: { host: name } });
    }

    const bridgeCidr = facts.bridge.cidr as string;
    const net = parseCidr(bridgeCidr);
    const fallback = defaultRange(net);
    range = { start: input.rangeStart ?? fallback.start, end: input.rangeEnd ?? fallback.end };
    requireRangeInNetwork(range, net);
    network = resolveNetworkSettings(
      DEFAULT_NETWORK_SETTINGS,
      { ...input.network, uplink: input.network?.uplink ?? facts.defaultRouteInterface ?? '' },
      { name, bridge, bridge_cidr: bridgeCidr, ssh_address: endpoint.sshAddress },
    );
    if (network.ha_domain !== '') {
      await checkTlsCertificate(runner, networkHost({ name, bridge, bridge_cidr: bridgeCidr, data_dir: dataDir, ...network }));
    }
  } finally {
    await runner.close();
  }

  const virtType: VirtType = input.virtType ?? (facts.kvm.works ? 'kvm' : 'qemu');
  const hostKeySha256 = input.hostKey ? fingerprint(parseHostKey(input.hostKey).blob) : null;

  const host = await withAudit(context.db, async (trx) => {
    const created = await trx
      .insertInto('hosts')
      .values({
        name,
        transport: input.transport,
        ssh_address: endpoint.sshAddress,
        ssh_port: input.transport === 'ssh' ? endpoint.sshPort : null,
        ssh_user: input.transport === 'ssh' ? endpoint.sshUser : null,
        host_key: input.hostKey?.trim().split(/\s+/).slice(0, 2).join(' ') ?? null,
        host_key_sha256: hostKeySha256,
        bridge,
        bridge_cidr: facts.bridge.cidr as string,
        range_start: range.start,
        range_end: range.end,
        virt_type: virtType,
        data_dir: dataDir,
        ovmf_code: facts.ovmfCode as string,
        ovmf_vars: facts.ovmfVars as string,
        vcpus: facts.cpus,
        memory_mib: facts.memoryMib,
        ...network,
        checked_at: new Date(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return {
      result: created,
      audit: {
        actor,
        action: 'host.add',
        target: { kind: 'host', id: created.id },
        details: { name, transport: input.transport, address: endpoint.sshAddress, hostKeySha256, virtType, kvm: facts.kvm.detail },
      },
    };
  });
  return { host, facts, problems: [], roundTrips: runner.roundTrips };
}

/** Lists hosts by name. */
export async function listHosts(db: Db): Promise<Host[]> {
  return db.selectFrom('hosts').selectAll().where('removed_at', 'is', null).orderBy('name').execute();
}

/**
 * Finds a host by name.
 *
 * @throws NotFoundError when there is none.
 */
export async function getHost(db: Db, name: string): Promise<Host> {
  const host = await db.selectFrom('hosts').selectAll().where('name', '=', name).where('removed_at', 'is', null).executeTakeFirst();
  if (!host) {
    throw new NotFoundError('host', name, { hints: ['run `vome host list`'] });
  }
  return host;
}

/** Probes a recorded host again and lists what it lacks. */
export async function checkHost(context: HostContext, name: string): Promise<HostCheck> {
  const host = await getHost(context.db, name);
  const runner = runnerForHost(context.config, context.logger, host);
  try {
    const facts = await probeHost(runner, host.bridge, host.data_dir, false);
    const problems = hostProblems(facts);
    if (facts.bridge.cidr && facts.bridge.cidr !== host.bridge_cidr) {
      problems.push(`bridge "${host.bridge}" has address ${facts.bridge.cidr}, but ${host.bridge_cidr} was recorded`);
    }
    if (problems.length === 0) {
      await context.db.updateTable('hosts').set({ checked_at: new Date() }).where('id', '=', host.id).execute();
    }
    return { host, facts, problems, roundTrips: runner.roundTrips };
  } finally {
    await runner.close();
  }
}

/**
 * Pins a new SSH host key for a recorded host, for example after the host was
 * reinstalled. The host must present exactly that key: vome connects with it
 * and runs a no-op before recording it.
 *
 * @throws HostKeyMismatchError when the host presents another key.
 */
export async function setHostKey(context: HostContext, actor: Actor, name: string, hostKey: string): Promise<Host> {
  const host = await getHost(context.db, name);
  if (host.transport !== 'ssh') {
    throw new InvalidInputError(`host "${name}" is local and has no SSH key to pin`);
  }
  const key = parseHostKey(hostKey);
  const line = hostKey.trim().split(/\s+/).slice(0, 2).join(' ');
  const runner = runnerForHost(context.config, context.logger, { ...host, host_key: line });
  try {
    await runner.run('true', { label: 'check new host key', timeoutMs: 30_000 });
  } finally {
    await runner.close();
  }

  const newFingerprint = fingerprint(key.blob);
  return withAudit(context.db, async (trx) => {
    const updated = await trx
      .updateTable('hosts')
      .set({ host_key: line, host_key_sha256: newFingerprint })
      .where('id', '=', host.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return {
      result: updated,
      audit: { actor, action: 'host.set-key', target: { kind: 'host', id: host.id }, details: { name, previous: host.host_key ? fingerprint(parseHostKey(host.host_key).blob) : null, pinned: newFingerprint } },
    };
  });
}

/**
 * Removes a host: it is no longer listed or used, and its name is free
 * again. The record stays for the destroyed servers that ran on it. Files on
 * the host are left alone. A host that still carries servers is kept.
 *
 * @throws ConflictError naming the servers that remain.
 */
export async function removeHost(db: Db, actor: Actor, name: string): Promise<Host> {
  const host = await getHost(db, name);
  return withAudit(db, async (trx) => {
    const servers = await trx
      .selectFrom('servers')
      .select('name')
      .where('host_id', '=', host.id)
      .where('state', '<>', 'destroyed')
      .orderBy('name')
      .execute();
    if (servers.length > 0) {
      throw new ConflictError(`host "${name}" still has servers: ${servers.map((server) => server.name).join(', ')}`, {
        hints: ['destroy them first with `vome server destroy NAME`'],
      });
    }
    // Marked, not deleted: destroyed servers still reference the host, and
    // the unique name index covers live hosts only.
    await trx.updateTable('hosts').set({ removed_at: new Date() }).where('id', '=', host.id).execute();
    return { result: host, audit: { actor, action: 'host.remove', target: { kind: 'host', id: host.id }, details: { name } } };
  });
}
