import { Args } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { EXIT } from '../../lib/exit-codes.js';
import { hostJson } from '../../lib/render.js';
import type { HostCheckJson } from './add.js';

export default class HostCheck extends BaseCommand {
  static override summary = 'Check that a host still has what vome needs.';
  static override description = 'Connects with the pinned key and checks libvirt, qemu-img, OVMF, the bridge and DHCP. Exits 6 when something is missing, and lists it.';
  static override examples = ['<%= config.bin %> host check ha-1', '<%= config.bin %> host check ha-1 --json'];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };

  async run(): Promise<HostCheckJson> {
    const { args } = await this.parse(HostCheck);
    const { checkHost } = await import('@vome/core');
    const result = await checkHost(await this.context(), args.name);
    const json: HostCheckJson = {
      host: hostJson(result.host),
      problems: result.problems,
      kvm: result.facts.kvm,
      libvirtVersion: result.facts.libvirt.version,
      roundTrips: result.roundTrips,
    };
    if (result.problems.length > 0) {
      for (const problem of result.problems) {
        process.stderr.write(`problem: ${problem}\n`);
      }
      if (this.jsonEnabled()) {
        this.logJson(json);
      }
      this.exit(EXIT.checkFailed);
    }
    this.log(`host ${result.host.name} is ready (libvirt ${result.facts.libvirt.version ?? 'unknown'})`);
    return json;
  }
}
