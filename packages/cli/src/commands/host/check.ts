import { Args } from '@oclif/core';
import type { PlanChange } from '@vome/core';
import { BaseCommand } from '../../lib/base-command.js';
import { EXIT } from '../../lib/exit-codes.js';
import { planLines } from '../../lib/plan-lines.js';
import { hostJson } from '../../lib/render.js';
import type { HostCheckJson } from './add.js';

export interface HostDriftCheckJson extends HostCheckJson {
  /** Network differences from the database; null when the host's network is not set up. */
  drift: PlanChange[] | null;
}

export default class HostCheck extends BaseCommand {
  static override summary = 'Check that a host still has what vome needs and that its network matches the database.';
  static override description = `Connects with the pinned key and checks libvirt, qemu-img, OVMF, the bridge and DHCP. When the host's network is set up (uplink and HA domain), it also compares the firewall, nginx map and WireGuard interfaces with the database, as \`vome host plan\` does. Exits 6 when something is missing or has drifted, and lists it; \`vome host apply\` repairs drift.`;
  static override examples = ['<%= config.bin %> host check ha-1', '<%= config.bin %> host check ha-1 --json'];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };

  async run(): Promise<HostDriftCheckJson> {
    const { args } = await this.parse(HostCheck);
    const { checkHost, planHostNetwork } = await import('@vome/core');
    const context = await this.context();
    const result = await checkHost(context, args.name);
    const networkReady = result.host.uplink !== '' && result.host.ha_domain !== '';
    const plan = networkReady && result.problems.length === 0 ? await planHostNetwork(context, args.name) : null;
    const drift = plan?.changes ?? null;
    const problems = [...result.problems, ...planLines(drift ?? []).map((line) => `drift: ${line}`)];
    const json: HostDriftCheckJson = {
      host: hostJson(result.host),
      problems,
      kvm: result.facts.kvm,
      libvirtVersion: result.facts.libvirt.version,
      drift,
      roundTrips: result.roundTrips + (plan?.roundTrips ?? 0),
    };
    if (problems.length > 0) {
      for (const problem of problems) {
        process.stderr.write(`problem: ${problem}\n`);
      }
      if ((drift ?? []).length > 0) {
        process.stderr.write(`hint: run \`vome host plan ${result.host.name}\` to review and \`vome host apply ${result.host.name}\` to repair the drift\n`);
      }
      if (this.jsonEnabled()) {
        this.logJson(json);
      }
      this.exit(EXIT.checkFailed);
    }
    const network = networkReady ? ', network matches the database' : ', network not set up (see `vome host set`)';
    this.log(`host ${result.host.name} is ready (libvirt ${result.facts.libvirt.version ?? 'unknown'})${network}`);
    return json;
  }
}
