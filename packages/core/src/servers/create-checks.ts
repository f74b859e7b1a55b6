import type { Transaction } from 'kysely';
import { getAccount } from '../accounts/accounts.js';
import type { Db } from '../db/connection.js';
import type { Database, Host, Server } from '../db/schema.js';
import { ConflictError, HostNotReadyError, InvalidInputError } from '../errors/index.js';
import { type CommandRunner, parseKeyValueLines, shellQuote } from '../runner/command-runner.js';
import { type CreateServerInput, DEFAULT_SIZE, getServerById } from './servers.js';

/**
 * Checks a host in one round trip before anything is recorded for a new
 * server. The host must present its pinned key and libvirt must run. No
 * domain may have the server's libvirt name, and the disk must fit in the
 * free space of the host's data folder.
 */
export async function preflight(runner: CommandRunner, host: Host, server: { name: string; diskGib: number }): Promise<void> {
  const domain = `vome-${server.name}`;
  const result = await runner.run(
    `if ! out=$(virsh -q -c qemu:///system version --daemon 2>&1); then printf 'libvirt_error=%s\\n' "$(printf '%s' "$out" | tail -n1)"; exit 0; fi
if uuid=$(virsh -q -c qemu:///system domuuid ${shellQuote(domain)} 2>/dev/null); then echo "domain_uuid=$uuid"; fi
echo "disk_free=$(df -B1 --output=avail ${shellQuote(host.data_dir)} | tail -n1 | tr -d ' ')"`,
    { label: 'check host', timeoutMs: 30_000 },
  );
  const facts = parseKeyValueLines(result.stdout);

  const libvirtError = facts.libvirt_error;
  if (libvirtError !== undefined) {
    throw new HostNotReadyError(`libvirt on host "${host.name}" is not reachable: ${libvirtError}`, {
      hints: [`start libvirtd on the host, then run \`vome host check ${host.name}\``],
      fields: { host: host.name },
    });
  }
  const existing = facts.domain_uuid;
  if (existing) {
    throw new ConflictError(`host "${host.name}" already has a libvirt domain named "${domain}" (uuid ${existing}) that is not a server of this vome`, {
      hints: ['pick another server name, or remove that domain on the host if it is an orphan'],
      fields: { host: host.name, server: server.name },
    });
  }
  const free = Number(facts.disk_free);
  if (Number.isFinite(free) && server.diskGib * 2 ** 30 > free) {
    throw new InvalidInputError(
      `invalid disk size ${server.diskGib} GiB: host "${host.name}" has ${(free / 2 ** 30).toFixed(1)} GiB free in ${host.data_dir}`,
      { hints: ['choose a smaller --disk, or another host'] },
    );
  }
}

/**
 * Checks that no live server has this name or subdomain.
 *
 * @throws ConflictError naming the one that is taken.
 */
export async function requireFreeNames(db: Db | Transaction<Database>, name: string, subdomain: string): Promise<void> {
  const clash = await db
    .selectFrom('servers')
    .select(['name', 'subdomain'])
    .where('state', '<>', 'destroyed')
    .where((eb) => eb.or([eb('name', '=', name), eb('subdomain', '=', subdomain)]))
    .executeTakeFirst();
  if (clash) {
    const what = clash.name === name ? `name "${name}"` : `subdomain "${subdomain}"`;
    throw new ConflictError(`a server with the ${what} already exists`, { hints: ['pick another, or run `vome server list`'] });
  }
}

/**
 * Checks that a repeated create requests what the interrupted one recorded,
 * so that finishing it cannot give a server to another owner or another size
 * than the operator now expects.
 *
 * @throws ConflictError listing every difference.
 */
export async function requireSameRequest(db: Db, recorded: Server, input: CreateServerInput): Promise<void> {
  const view = await getServerById(db, recorded.id);
  const account = await getAccount(db, input.account).catch(() => undefined);
  const checks: Array<{ field: string; requested: string | number; recorded: string | number; same?: boolean }> = [
    { field: 'account', requested: input.account, recorded: view.account_login, same: account?.id === recorded.account_id },
    { field: 'host', requested: input.host, recorded: view.host_name },
    { field: 'image', requested: input.image, recorded: view.image_name },
    { field: 'subdomain', requested: input.subdomain ?? input.name, recorded: recorded.subdomain },
    { field: 'vCPUs', requested: input.vcpus ?? DEFAULT_SIZE.vcpus, recorded: recorded.vcpus },
    { field: 'memory (MiB)', requested: input.memoryMib ?? DEFAULT_SIZE.memoryMib, recorded: recorded.memory_mib },
    { field: 'disk (GiB)', requested: input.diskGib ?? DEFAULT_SIZE.diskGib, recorded: recorded.disk_gib },
    { field: 'Home Assistant port', requested: input.haPort ?? 8123, recorded: recorded.ha_port },
  ];
  const differences = checks
    .filter((check) => !(check.same ?? String(check.requested) === String(check.recorded)))
    .map((check) => `${check.field} ${check.requested} (recorded: ${check.recorded})`);
  if (differences.length > 0) {
    throw new ConflictError(`server "${recorded.name}" has an unfinished create with other settings: ${differences.join(', ')}`, {
      hints: [`run the create again with the recorded settings to finish it, or \`vome server destroy ${recorded.name}\` to drop it`],
      fields: { server: recorded.name },
    });
  }
}

