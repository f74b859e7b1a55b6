import { Args } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { networkFlags, networkSettingsInput } from '../../lib/network-flags.js';
import { type HostJson, hostJson } from '../../lib/render.js';

export default class HostSet extends BaseCommand {
  static override summary = "Change a host's network settings.";
  static override description = `Records the uplink, HA domain, certificate paths, nginx paths or tunnel ranges of a host. A new HA domain or certificate is checked on the host first: the certificate must cover *.<ha-domain>, be valid now and match its key. Nothing on the host changes until \`vome host apply\` or the next server operation; run \`vome host plan\` to see what would change.`;
  static override examples = [
    '<%= config.bin %> host set ha-1 --uplink eth0 --ha-domain ha.example.com',
    '<%= config.bin %> host set ha-1 --tls-cert /etc/letsencrypt/live/ha.example.com/fullchain.pem --tls-key /etc/letsencrypt/live/ha.example.com/privkey.pem --json',
  ];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };
  static override flags = networkFlags;

  async run(): Promise<HostJson> {
    const { args, flags } = await this.parse(HostSet);
    const { setHostNetwork } = await import('@vome/core');
    const host = await setHostNetwork(await this.context(), this.adminActor(), args.name, networkSettingsInput(flags));
    this.log(`host ${host.name}: uplink ${host.uplink || '(none)'}, HA domain ${host.ha_domain || '(none)'}, tunnels ${host.tunnel_network} from port ${host.tunnel_port_start}`);
    return hostJson(host);
  }
}
