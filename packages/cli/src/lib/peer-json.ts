import type { NetworkTunnel } from '@vome/core';

/** The JSON shape of a server's WireGuard interface, without its private key. */
export interface TunnelJson {
  interface: string;
  listenPort: number;
  network: string;
  address: string;
  publicKey: string;
}

/** The JSON shape of one peer together with the interface it belongs to. */
export interface PeerJson {
  server: string;
  tunnel: TunnelJson;
  peer: { name: string; address: string; publicKey: string; allowedIps: string[] };
}

export interface PeerListJson {
  server: string;
  tunnel: TunnelJson;
  peers: { name: string; address: string; publicKey: string }[];
}

function tunnelJson(tunnel: NetworkTunnel): TunnelJson {
  return { interface: tunnel.interface, listenPort: tunnel.listenPort, network: tunnel.network, address: tunnel.address, publicKey: tunnel.publicKey };
}

export function peerJson(server: string, serverAddress: string, tunnel: NetworkTunnel, peerName: string): PeerJson {
  const peer = tunnel.peers.find((candidate) => candidate.name === peerName);
  if (!peer) {
    throw new Error(`peer ${peerName} missing from the tunnel of ${server}`);
  }
  // What the peer routes through the tunnel: the server's /24 and its VM.
  const allowedIps = [tunnel.network, `${serverAddress}/32`];
  return { server, tunnel: tunnelJson(tunnel), peer: { name: peer.name, address: peer.address, publicKey: peer.publicKey, allowedIps } };
}

export function peerListJson(server: string, tunnel: NetworkTunnel): PeerListJson {
  return { server, tunnel: tunnelJson(tunnel), peers: tunnel.peers.map((peer) => ({ name: peer.name, address: peer.address, publicKey: peer.publicKey })) };
}
