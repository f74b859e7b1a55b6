import { Args } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { type HostJson, hostJson, table } from '../../lib/render.js';

export default class HostShow extends BaseCommand {
  static override summary = 'Show a host and how many servers it carries.';
  static override examples = ['<%= config.bin %> host show ha-1', '<%= config.bin %> host show ha-1 --json'];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };

  async run(): Promise<HostJson & { servers: number; addressesInUse: number }> {
    const { args } = await this.parse(HostShow);
    const { getHost } = await import('@vome/core');
    const db = await this.db();
    const host = await getHost(db, args.name);
    const servers = await db.selectFrom('servers').select((eb) => eb.fn.countAll<string>().as('count')).where('host_id', '=', host.id).where('state', '<>', 'destroyed').executeTakeFirstOrThrow();
    const addresses = await db.selectFrom('address_allocations').select((eb) => eb.fn.countAll<string>().as('count')).where('host_id', '=', host.id).executeTakeFirstOrThrow();
    const json = { ...hostJson(host), servers: Number(servers.count), addressesInUse: Number(addresses.count) };
    if (!this.jsonEnabled()) {
      const { network, ...fields } = json;
      const rows = Object.entries(fields).map(([key, value]): [string, string | number | null] => {
        if (key === 'range') {
          return [key, `${json.range.start}–${json.range.end}`];
        }
        return [key, value as string | number | null];
      });
      for (const [key, value] of Object.entries(network)) {
        rows.push([key, Array.isArray(value) ? value.join(', ') || '(none)' : value || '(not set)']);
      }
      this.log(table(['FIELD', 'VALUE'], rows));
    }
    return json;
  }
}
