import { Args } from '@oclif/core';
import type { PlanChange } from '@vome/core';
import { BaseCommand } from '../../lib/base-command.js';
import { planLines } from '../../lib/plan-lines.js';

export interface HostPlanJson {
  host: string;
  changes: PlanChange[];
  roundTrips: number;
}

export default class HostPlan extends BaseCommand {
  static override summary = "Show what `vome host apply` would change on a host's network.";
  static override description = `Reads the host's firewall chains, nginx site file and WireGuard interfaces and compares them with the state the database describes. Prints one line per difference: "+" for what apply would add, "-" for what it would remove. Changes nothing.`;
  static override examples = ['<%= config.bin %> host plan ha-1', '<%= config.bin %> host plan ha-1 --json'];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };

  async run(): Promise<HostPlanJson> {
    const { args } = await this.parse(HostPlan);
    const { planHostNetwork } = await import('@vome/core');
    const plan = await planHostNetwork(await this.context(), args.name);
    if (plan.changes.length === 0) {
      this.log(`host ${plan.host}: no changes`);
    } else {
      for (const line of planLines(plan.changes)) {
        this.log(line);
      }
    }
    return plan;
  }
}
