import { Args } from '@oclif/core';
import { BaseCommand } from '../../../lib/base-command.js';
import { type PeerListJson, peerListJson } from '../../../lib/peer-json.js';
import { table } from '../../../lib/render.js';

export default class ServerPeerList extends BaseCommand {
  static override summary = "List a server's WireGuard interface and peers.";
  static override description = "Shows the server's interface (name, listen port, /24 and public key) and each peer with its /32 and public key. Private keys are never stored or shown.";
  static override examples = ['<%= config.bin %> server peer list kitchen', '<%= config.bin %> server peer list kitchen --json'];
  static override args = {
    server: Args.string({ description: 'Server name.', required: true }),
  };

  async run(): Promise<PeerListJson> {
    const { args } = await this.parse(ServerPeerList);
    const { listTunnelPeers } = await import('@vome/core');
    const { server, tunnel } = await listTunnelPeers(await this.db(), args.server);
    this.log(`${server}: interface ${tunnel.interface}, port ${tunnel.listenPort}, network ${tunnel.network}, key ${tunnel.publicKey}`);
    if (tunnel.peers.length > 0) {
      this.log(table(['PEER', 'ADDRESS', 'PUBLIC KEY'], tunnel.peers.map((peer) => [peer.name, peer.address, peer.publicKey])));
    } else {
      this.log('no peers');
    }
    return peerListJson(server, tunnel);
  }
}
