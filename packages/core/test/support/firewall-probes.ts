import { type ChildProcess, spawn } from 'node:child_process';
import { execa } from 'execa';

/**
 * Real-packet probes for firewall tests: listeners and clients run as node
 * processes (for ICMP, iputils `ping`) inside a test's network namespace.
 */

/** How long a probe waits for a reply or an arrival before it counts a packet as dropped. */
export const PROBE_TIMEOUT_MS = 1_500;

/** One connection or datagram that a listener received. */
export interface Arrival {
  /** The source address the listener saw. */
  from: string;
  /** The datagram's text; "" for a TCP connection. */
  data: string;
}

const LISTENER = `
const [protocol, address, port] = process.argv.slice(1);
const report = (from, data) => process.stdout.write(JSON.stringify({ from, data }) + '\\n');
if (protocol === 'tcp') {
  const server = require('node:net').createServer((socket) => {
    report(socket.remoteAddress, '');
    // Clients close at once, so a write may meet a reset; that must not end the listener.
    socket.on('error', () => {});
    socket.end('hello');
  });
  server.listen(Number(port), address, () => process.stdout.write('listening\\n'));
} else {
  const socket = require('node:dgram').createSocket('udp4');
  // On the DHCP port the text follows a 44-byte BOOTP-like head (see dhcpPayload).
  socket.on('message', (message, remote) => report(remote.address, (Number(port) === 67 ? message.subarray(44) : message).toString()));
  socket.bind(Number(port), address, () => process.stdout.write('listening\\n'));
}`;

const TCP_CLIENT = `
const [address, port, timeout, source] = process.argv.slice(1);
const socket = require('node:net').connect({ host: address, port: Number(port), localAddress: source || undefined });
socket.setTimeout(Number(timeout), () => { process.stdout.write('timeout'); process.exit(0); });
socket.on('connect', () => { process.stdout.write('connected'); process.exit(0); });
socket.on('error', (error) => { process.stdout.write(error.code === 'ECONNREFUSED' ? 'refused' : 'error ' + error.code); process.exit(0); });`;

// A DHCP-like payload: 28 bytes of filler, then chaddr (16 bytes: the MAC,
// zero-padded) where a DHCP message has it, then the text.
const DHCP_PAYLOAD = `
const dhcpPayload = (chaddr, data) => chaddr ? Buffer.concat([Buffer.alloc(28, 0x2d), Buffer.from(chaddr.padEnd(32, '0'), 'hex'), Buffer.from(data)]) : data;`;

const UDP_CLIENT = `${DHCP_PAYLOAD}
const [address, port, data, source, chaddr] = process.argv.slice(1);
const socket = require('node:dgram').createSocket('udp4');
const send = () => socket.send(dhcpPayload(chaddr, data), Number(port), address, (error) => { if (error) throw error; socket.close(); });
if (source) socket.bind(0, source, send); else send();`;

const DHCP_CLIENT = `${DHCP_PAYLOAD}
const [data, chaddr] = process.argv.slice(1);
const socket = require('node:dgram').createSocket('udp4');
socket.bind(68, '0.0.0.0', () => {
  socket.setBroadcast(true);
  socket.send(dhcpPayload(chaddr, data), 67, '255.255.255.255', (error) => { if (error) throw error; socket.close(); });
});`;


/** A TCP or UDP listener inside a namespace that records what arrives. */
export class Listener {
  private readonly arrivals: Arrival[] = [];

  private constructor(private readonly child: ChildProcess) {}

  /** Starts a listener and waits until it is bound. */
  static start(namespace: string, protocol: 'tcp' | 'udp', address: string, port: number): Promise<Listener> {
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', LISTENER, protocol, address, String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const listener = new Listener(child);
    let buffer = '';
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${protocol} listener on ${address}:${port} in ${namespace} did not start within 10 s`)), 10_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${protocol} listener on ${address}:${port} in ${namespace} exited with ${code}: ${errors}`));
      });
      child.stdout?.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          if (line === 'listening') {
            clearTimeout(timer);
            resolve(listener);
          } else if (line.startsWith('{')) {
            listener.arrivals.push(JSON.parse(line) as Arrival);
          }
        }
      });
    });
  }

  /** Everything received so far. */
  received(): Arrival[] {
    return [...this.arrivals];
  }

  /**
   * Waits for a datagram with this text, up to PROBE_TIMEOUT_MS, and
   * returns it, or null when none arrived.
   */
  async waitForData(data: string): Promise<Arrival | null> {
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const arrival = this.arrivals.find((candidate) => candidate.data === data);
      if (arrival !== undefined) {
        return arrival;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return null;
  }

  /** Ends the listener process (by its own pid). */
  stop(): void {
    this.child.kill('SIGTERM');
  }
}

/**
 * Opens a TCP connection from a namespace, optionally from a given source
 * address, and reports "connected", "refused", "timeout" or "error <code>".
 */
export async function tcpProbe(namespace: string, address: string, port: number, source = ''): Promise<string> {
  const result = await execa('ip', ['netns', 'exec', namespace, process.execPath, '-e', TCP_CLIENT, address, String(port), String(PROBE_TIMEOUT_MS), source]);
  return result.stdout;
}

/**
 * Sends one UDP datagram from a namespace, optionally from a given source
 * address. With `chaddr` (a MAC), the text follows a DHCP-like head that
 * names that MAC as the client.
 */
export async function udpSend(namespace: string, address: string, port: number, data: string, source = '', chaddr = ''): Promise<void> {
  await execa('ip', ['netns', 'exec', namespace, process.execPath, '-e', UDP_CLIENT, address, String(port), data, source, chaddr.replaceAll(':', '')]);
}

/**
 * Sends one UDP datagram the way a DHCP client does: from port 68 to
 * 255.255.255.255 port 67. The kernel sends it from 0.0.0.0 when the
 * namespace has no IPv4 address but has a route to 255.255.255.255.
 * The payload is `data` after a DHCP-like head naming `chaddr` as the client.
 */
export async function dhcpClientSend(namespace: string, data: string, chaddr: string): Promise<void> {
  await execa('ip', ['netns', 'exec', namespace, process.execPath, '-e', DHCP_CLIENT, data, chaddr.replaceAll(':', '')]);
}

/**
 * Sends one ICMP echo request from a namespace with iputils `ping` and
 * reports "reply" or "timeout".
 *
 * @throws Error when ping fails for another reason (exit code 2, such as
 *   an unknown address or no route), with its message.
 */
export async function icmpProbe(namespace: string, address: string): Promise<string> {
  // iputils ping exits with 0 on a reply and 1 when none came within -W seconds.
  const seconds = String(PROBE_TIMEOUT_MS / 1000);
  const result = await execa('ip', ['netns', 'exec', namespace, 'ping', '-n', '-q', '-c', '1', '-W', seconds, address], { reject: false });
  if (result.exitCode === 0) {
    return 'reply';
  }
  if (result.exitCode === 1) {
    return 'timeout';
  }
  throw new Error(`ping ${address} in namespace ${namespace} failed with exit code ${result.exitCode}: ${result.stderr}`);
}
