import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../lib/base-command.js';

export interface PeerRemoveJson {
  server: string;
  peer: string;
  address: string;
}

export default class ServerPeerRemove extends BaseCommand {
  static override summary = "Remove a WireGuard peer from a server's interface.";
  static override description = "Deletes the peer and applies the host's network, so its key no longer connects.";
  static override examples = ['<%= config.bin %> server peer remove kitchen --name phone', '<%= config.bin %> server peer remove kitchen --name phone --json'];
  static override args = {
    server: Args.string({ description: 'Server name.', required: true }),
  };
  static override flags = {
    name: Flags.string({ summary: 'Peer name.', required: true }),
  };

  async run(): Promise<PeerRemoveJson> {
    const { args, flags } = await this.parse(ServerPeerRemove);
    const { removeTunnelPeer } = await import('@vome/core');
    const peer = await removeTunnelPeer(await this.context(), this.adminActor(), args.server, flags.name);
    this.log(`removed peer ${peer.name} (${peer.ipv4}) from ${args.server}`);
    return { server: args.server, peer: peer.name, address: peer.ipv4 };
  }
}
