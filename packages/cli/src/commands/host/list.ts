import { BaseCommand } from '../../lib/base-command.js';
import { type HostJson, hostJson, table } from '../../lib/render.js';

export default class HostList extends BaseCommand {
  static override summary = 'List hosts.';
  static override examples = ['<%= config.bin %> host list', '<%= config.bin %> host list --json'];

  async run(): Promise<{ hosts: HostJson[] }> {
    const { listHosts } = await import('@vome/core');
    const hosts = (await listHosts(await this.db())).map(hostJson);
    if (!this.jsonEnabled()) {
      this.log(
        hosts.length === 0
          ? 'no hosts'
          : table(
              ['NAME', 'ADDRESS', 'VIRT', 'BRIDGE', 'RANGE', 'KEY'],
              hosts.map((h) => [h.name, h.transport === 'local' ? 'local' : `${h.user}@${h.address}:${h.port}`, h.virtType, `${h.bridge} ${h.bridgeCidr}`, `${h.range.start}–${h.range.end}`, h.hostKeySha256]),
            ),
      );
    }
    return { hosts };
  }
}
