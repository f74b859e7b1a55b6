import { Args } from '@oclif/core';
import type { NetworkPart, PlanChange } from '@vome/core';
import { BaseCommand } from '../../lib/base-command.js';
import { planLines } from '../../lib/plan-lines.js';

export interface HostApplyJson {
  host: string;
  changes: PlanChange[];
  changed: Record<NetworkPart, boolean>;
  roundTrips: number;
}

export default class HostApply extends BaseCommand {
  static override summary = "Bring a host's firewall, nginx and WireGuard in line with the database.";
  static override description = `Checks the TLS certificate, then writes nginx's site file (tested with \`nginx -t\` and reloaded; a failed test keeps the old file), loads vome's firewall chains with one iptables-restore call per address family and saves them for boot, and converges the WireGuard interfaces. Running it again when nothing changed touches nothing. Prints the differences it found, as \`vome host plan\` does.`;
  static override examples = ['<%= config.bin %> host apply ha-1', '<%= config.bin %> host apply ha-1 --json'];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };

  async run(): Promise<HostApplyJson> {
    const { args } = await this.parse(HostApply);
    const { applyHostNetwork } = await import('@vome/core');
    const result = await applyHostNetwork(await this.context(), this.adminActor(), args.name);
    for (const line of planLines(result.changes)) {
      this.note(line);
    }
    const parts = (Object.keys(result.changed) as NetworkPart[]).filter((part) => result.changed[part]);
    this.log(parts.length === 0 ? `host ${result.host}: no changes` : `host ${result.host}: applied ${parts.join(', ')}`);
    return result;
  }
}
