import { Args, Flags } from '@oclif/core';
import type { BootstrapResult } from '@vome/core';
import { BaseCommand } from '../../lib/base-command.js';
import { networkFlags, networkSettingsInput } from '../../lib/network-flags.js';

export default class HostBootstrap extends BaseCommand {
  static override summary = 'Install and configure what an HA host needs, then enrol it and apply its network.';
  static override description = `Over SSH (or locally with --local), in one round trip: installs the missing Debian packages (libvirt, QEMU, OVMF, dnsmasq, nginx, iptables, WireGuard tools, and wireguard-go where the kernel has no WireGuard module), turns on IPv4 forwarding and bridge filtering, creates the bridge with its address, starts dnsmasq for DHCP reservations, makes sure libvirtd and nginx run, and on systemd hosts installs vome-network.service, which restores all of this and the saved firewall and WireGuard state at boot.

A host that is not yet recorded is then enrolled as \`vome host add\` does (pass --address and --host-key). When the host has an uplink and an HA domain, its network is applied as \`vome host apply\` does. Every part is idempotent: run it again and each part reports "ok".`;
  static override examples = [
    '<%= config.bin %> host bootstrap ha-1 --address 192.0.2.10 --host-key "$(cat ha-1.pub)" --ha-domain ha.example.com --uplink eth0',
    '<%= config.bin %> host bootstrap ha-1',
    '<%= config.bin %> host bootstrap ha-1 --json',
  ];
  static override args = {
    name: Args.string({ description: 'Host name: a DNS label.', required: true }),
  };
  static override flags = {
    address: Flags.string({ summary: 'SSH address of a host that is not yet recorded.', exclusive: ['local'] }),
    port: Flags.integer({ summary: 'SSH port.', default: 22 }),
    user: Flags.string({ summary: 'SSH user (root, because packages are installed).', default: 'root' }),
    'host-key': Flags.string({ summary: 'Host public key to pin, as in /etc/ssh/ssh_host_ed25519_key.pub.' }),
    local: Flags.boolean({ summary: 'Bootstrap this machine, without SSH.' }),
    bridge: Flags.string({ summary: 'Bridge the servers attach to.', default: 'br-haos' }),
    'bridge-address': Flags.string({ summary: "The bridge's own address with prefix, for a new bridge.", default: '10.232.0.1/24' }),
    'data-dir': Flags.string({ summary: 'Folder on the host for images, server disks, DHCP reservations and network state.', default: '/var/lib/vome/host' }),
    'range-start': Flags.string({ summary: 'First server address, when enrolling (default: the 10th address of the bridge network).' }),
    'range-end': Flags.string({ summary: 'Last server address, when enrolling (default: the one before broadcast).' }),
    ...networkFlags,
  };

  async run(): Promise<BootstrapResult> {
    const { args, flags } = await this.parse(HostBootstrap);
    const { bootstrapHost } = await import('@vome/core');
    const result = await bootstrapHost(await this.context(), this.adminActor(), {
      name: args.name,
      transport: flags.local ? 'local' : 'ssh',
      address: flags.address,
      port: flags.port,
      user: flags.user,
      hostKey: flags['host-key'],
      bridge: flags.bridge,
      bridgeCidr: flags['bridge-address'],
      dataDir: flags['data-dir'],
      rangeStart: flags['range-start'],
      rangeEnd: flags['range-end'],
      network: networkSettingsInput(flags),
    });
    for (const item of result.items) {
      this.note(`${item.status.padEnd(7)} ${item.name}: ${item.detail}`);
    }
    const changed = result.items.filter((item) => item.status === 'changed').length;
    const network = result.network ? `, network ${Object.values(result.network.changed).some(Boolean) ? 'applied' : 'unchanged'}` : '';
    this.log(`host ${result.host} bootstrapped: ${changed} part(s) changed${result.enrolled ? ', enrolled' : ''}${network}`);
    return result;
  }
}
