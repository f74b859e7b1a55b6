import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../lib/base-command.js';
import { type PeerJson, peerJson } from '../../../lib/peer-json.js';

export default class ServerPeerAdd extends BaseCommand {
  static override summary = "Add a WireGuard peer to a server's interface.";
  static override description = `Gives the peer the next free address in the server's /24 and applies the host's network, so the peer can connect at once. The peer keeps its private key: pass only its public key (44 characters of standard base64, as \`wg pubkey\` prints). Prints the values the peer's own configuration needs: its address, the server's public key, listen port and network.`;
  static override examples = [
    '<%= config.bin %> server peer add kitchen --name phone --public-key "$(wg genkey | tee phone.key | wg pubkey)"',
    '<%= config.bin %> server peer add kitchen --name laptop --public-key "$(cat laptop.pub)" --json',
  ];
  static override args = {
    server: Args.string({ description: 'Server name.', required: true }),
  };
  static override flags = {
    name: Flags.string({ summary: 'Peer name: a DNS label, unique per server.', required: true }),
    'public-key': Flags.string({ summary: "The peer's WireGuard public key.", required: true }),
  };

  async run(): Promise<PeerJson> {
    const { args, flags } = await this.parse(ServerPeerAdd);
    const { addTunnelPeer } = await import('@vome/core');
    const result = await addTunnelPeer(await this.context(), this.adminActor(), { server: args.server, name: flags.name, publicKey: flags['public-key'] });
    this.log(
      `added peer ${result.peer.name} to ${result.server} at ${result.peer.ipv4}/32: server key ${result.tunnel.publicKey}, endpoint <host's public address>:${result.tunnel.listenPort}, allowed IPs ${result.tunnel.network} and ${result.serverAddress}/32`,
    );
    return peerJson(result.server, result.serverAddress, result.tunnel, result.peer.name);
  }
}
