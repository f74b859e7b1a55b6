import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { type HostJson, hostJson } from '../../lib/render.js';

export default class HostSetKey extends BaseCommand {
  static override summary = 'Pin a new SSH host key for a host, after a reinstall.';
  static override description = 'Connects with the new key and runs a no-op before recording it, so a key that the host does not present is never pinned. Check the key on the host console first: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`.';
  static override examples = [
    '<%= config.bin %> host set-key ha-1 --host-key "$(cat ha-1_ed25519.pub)"',
    '<%= config.bin %> host set-key ha-1 --host-key "ssh-ed25519 AAAAC3Nza..." --json',
  ];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };
  static override flags = {
    'host-key': Flags.string({ summary: 'Host public key to pin, as in /etc/ssh/ssh_host_ed25519_key.pub.', required: true }),
  };

  async run(): Promise<HostJson> {
    const { args, flags } = await this.parse(HostSetKey);
    const { setHostKey } = await import('@vome/core');
    const host = await setHostKey(await this.context(), this.adminActor(), args.name, flags['host-key']);
    this.log(`pinned ${host.host_key_sha256} for host ${host.name}`);
    return hostJson(host);
  }
}
