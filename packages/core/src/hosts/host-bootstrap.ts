import type { Actor } from '../audit/actor.js';
import { appendAudit } from '../audit/audit-log.js';
import { HostCommandError, HostNotReadyError } from '../errors/index.js';
import { numberToIpv4, parseCidr } from '../naming/ipv4.js';
import { applyHostNetwork, type NetworkApplyResult } from '../network/network-apply.js';
import type { NetworkSettingsInput } from '../network/network-settings.js';
import { networkDir } from '../network/tunnels.js';
import { renderBootstrapScript } from './bootstrap-script.js';
import { type HostEndpoint, openRunner, runnerForHost } from './host-connection.js';
import { setHostNetwork } from './host-settings.js';
import { type AddHostInput, addHost, type HostContext } from './hosts.js';

/** One part of a host that bootstrap checked, and what it did about it. */
export interface BootstrapItem {
  name: string;
  status: 'ok' | 'changed' | 'skipped' | 'failed';
  detail: string;
}

export interface BootstrapResult {
  host: string;
  /** True when this run enrolled the host. */
  enrolled: boolean;
  items: BootstrapItem[];
  /** The network apply that followed, or null when the network is not set up. */
  network: NetworkApplyResult | null;
  roundTrips: number;
}

const DEFAULT_BRIDGE_CIDR = '10.232.0.1/24';

/**
 * Turns a Debian machine into an HA host. It installs the packages, sets up
 * forwarding, bridge filtering, the bridge and DHCP, makes sure libvirtd and
 * nginx run, and installs a boot unit on systemd hosts. It then enrols the
 * host from `input`'s SSH settings when it is not yet recorded, and applies
 * its network when the uplink and HA domain are set. Every part is
 * idempotent, so a second run reports each part as ok.
 *
 * @throws HostNotReadyError when the host cannot be bootstrapped (not Debian,
 *   libvirtd not running without systemd, nginx rejecting its configuration).
 */
export async function bootstrapHost(
  context: HostContext,
  actor: Actor,
  input: AddHostInput & { bridgeCidr?: string },
): Promise<BootstrapResult> {
  const recorded = await context.db.selectFrom('hosts').selectAll().where('name', '=', input.name).where('removed_at', 'is', null).executeTakeFirst();
  const endpoint: HostEndpoint = recorded
    ? { name: recorded.name, transport: recorded.transport, sshAddress: recorded.ssh_address, sshPort: recorded.ssh_port, sshUser: recorded.ssh_user, hostKey: recorded.host_key }
    : { name: input.name, transport: input.transport, sshAddress: input.address, sshPort: input.port ?? 22, sshUser: input.user ?? 'root', hostKey: input.hostKey };
  const bridgeCidr = recorded?.bridge_cidr ?? input.bridgeCidr ?? DEFAULT_BRIDGE_CIDR;
  const bridge = parseCidr(bridgeCidr);
  const dataDir = recorded?.data_dir ?? input.dataDir ?? '/var/lib/vome/host';
  const settings: Required<Pick<NetworkSettingsInput, 'nginxMainConfigPath' | 'nginxSitePath'>> = {
    nginxMainConfigPath: recorded?.nginx_main_config_path ?? input.network?.nginxMainConfigPath ?? '/etc/nginx/nginx.conf',
    nginxSitePath: recorded?.nginx_site_path ?? input.network?.nginxSitePath ?? '/etc/nginx/conf.d/vome.conf',
  };
  const script = renderBootstrapScript({
    bridge: recorded?.bridge ?? input.bridge ?? 'br-haos',
    bridgeCidr,
    bridgeNetwork: numberToIpv4(bridge.network),
    bridgeNetmask: numberToIpv4(2 ** 32 - 2 ** (32 - bridge.prefix)),
    dataDir,
    networkDir: networkDir({ data_dir: dataDir }),
    ...settings,
  });

  const runner = recorded ? runnerForHost(context.config, context.logger, recorded) : openRunner(context.config, context.logger, endpoint);
  let items: BootstrapItem[];
  try {
    const result = await runner.run(script, { label: 'bootstrap', timeoutMs: 900_000, check: false });
    if (result.exitCode !== 0) {
      const failures = parseItems(result.stdout)
        .filter((item) => item.status === 'failed')
        .map((item) => `${item.name}: ${item.detail}`);
      const reason = [...failures, ...result.stderr.trim().split('\n').slice(-3)].join('; ');
      if (result.exitCode === 3) {
        throw new HostNotReadyError(`cannot bootstrap host "${input.name}": ${reason}`, { fields: { host: input.name } });
      }
      throw new HostCommandError(input.name, 'bootstrap', result.exitCode, result.stderr);
    }
    items = parseItems(result.stdout);
  } finally {
    await runner.close();
  }
  let roundTrips = runner.roundTrips;

  let enrolled = false;
  if (recorded && Object.values(input.network ?? {}).some((value) => value !== undefined)) {
    await setHostNetwork(context, actor, recorded.name, input.network ?? {});
  }
  if (!recorded) {
    const added = await addHost(context, actor, { ...input, bridge: input.bridge ?? 'br-haos', dataDir });
    roundTrips += added.roundTrips;
    enrolled = true;
  }
  const host = await context.db.selectFrom('hosts').selectAll().where('name', '=', input.name).where('removed_at', 'is', null).executeTakeFirstOrThrow();
  await appendAudit(context.db, {
    actor,
    action: 'host.bootstrap',
    target: { kind: 'host', id: host.id },
    details: { name: host.name, enrolled, changed: items.filter((item) => item.status === 'changed').map((item) => item.name) },
  });
  let network: NetworkApplyResult | null = null;
  if (host.uplink !== '' && host.ha_domain !== '') {
    network = await applyHostNetwork(context, actor, host.name);
    roundTrips += network.roundTrips;
  } else {
    items.push({ name: 'network', status: 'skipped', detail: `no uplink or HA domain yet: set them with \`vome host set ${host.name}\`, then run \`vome host apply ${host.name}\`` });
  }
  return { host: host.name, enrolled, items, network, roundTrips };
}

function parseItems(stdout: string): BootstrapItem[] {
  const items: BootstrapItem[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('item=')) {
      continue;
    }
    const [name = '', status = '', ...detail] = line.slice('item='.length).split('|');
    if (status === 'ok' || status === 'changed' || status === 'skipped' || status === 'failed') {
      items.push({ name, status, detail: detail.join('|') });
    }
  }
  return items;
}

