import { Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { type ServerJson, serverJson, table } from '../../lib/render.js';

export default class ServerList extends BaseCommand {
  static override summary = 'List servers.';
  static override examples = ['<%= config.bin %> server list', '<%= config.bin %> server list --all --json'];
  static override flags = {
    all: Flags.boolean({ summary: 'Include destroyed servers.' }),
  };

  async run(): Promise<{ servers: ServerJson[] }> {
    const { flags } = await this.parse(ServerList);
    const { listServers } = await import('@vome/core');
    const servers = (await listServers(await this.db(), { includeDestroyed: flags.all })).map(serverJson);
    if (!this.jsonEnabled()) {
      this.log(
        servers.length === 0
          ? 'no servers'
          : table(
              ['NAME', 'STATE', 'ACCOUNT', 'HOST', 'ADDRESS', 'MAC', 'SIZE'],
              servers.map((s) => [s.name, s.state, s.account, s.host, s.ipv4, s.mac, `${s.vcpus} vCPU, ${s.memoryMib} MiB, ${s.diskGib} GiB`]),
            ),
      );
    }
    return { servers };
  }
}
