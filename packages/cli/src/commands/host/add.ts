import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { networkFlags, networkSettingsInput } from '../../lib/network-flags.js';
import { type HostJson, hostJson } from '../../lib/render.js';

export interface HostCheckJson {
  host: HostJson;
  problems: string[];
  kvm: { device: boolean; works: boolean; detail: string };
  libvirtVersion: string | null;
  roundTrips: number;
}

export default class HostAdd extends BaseCommand {
  static override summary = 'Enrol a host: pin its SSH key, check its tools, record it.';
  static override description = `Connects over SSH with the pinned host key, then checks in one round trip that libvirt responds, qemu-img and OVMF are installed, the bridge has an address, and dnsmasq serves DHCP reservations from <data-dir>/dhcp-hosts. It tries KVM with a short QEMU run and records "kvm" or "qemu" as the host's virtualisation type.

Without --host-key, the key the host presents is shown with its fingerprint and must be confirmed on a terminal; scripts pass --host-key.`;
  static override examples = [
    '<%= config.bin %> host add ha-1 --address 192.0.2.10 --host-key "ssh-ed25519 AAAAC3Nza..."',
    '<%= config.bin %> host add ha-1 --address 192.0.2.10 --bridge br-haos --data-dir /var/lib/vome/host --json --host-key "$(cat ha-1.pub)"',
    '<%= config.bin %> host add ha-1 --address 192.0.2.10 --host-key "$(cat ha-1.pub)" --ha-domain ha.example.com --uplink eth0',
  ];
  static override args = {
    name: Args.string({ description: 'Host name: a DNS label.', required: true }),
  };
  static override flags = {
    address: Flags.string({ summary: 'SSH address of the host.', exclusive: ['local'] }),
    port: Flags.integer({ summary: 'SSH port.', default: 22 }),
    user: Flags.string({ summary: 'SSH user (needs libvirt and root file access).', default: 'root' }),
    'host-key': Flags.string({ summary: 'Host public key to pin, as in /etc/ssh/ssh_host_ed25519_key.pub.' }),
    local: Flags.boolean({ summary: 'Use this machine as the host, without SSH.' }),
    bridge: Flags.string({ summary: 'Bridge the servers attach to.', default: 'br-haos' }),
    'data-dir': Flags.string({ summary: 'Folder on the host for images, server disks and DHCP reservations.', default: '/var/lib/vome/host' }),
    'range-start': Flags.string({ summary: 'First server address (default: the 10th address of the bridge network).' }),
    'range-end': Flags.string({ summary: 'Last server address (default: the one before broadcast).' }),
    'virt-type': Flags.string({ summary: 'Skip KVM detection and use this virtualisation type.', options: ['kvm', 'qemu'] }),
    ...networkFlags,
  };

  async run(): Promise<HostCheckJson> {
    const { args, flags } = await this.parse(HostAdd);
    const core = await import('@vome/core');
    const context = await this.context();

    let hostKey = flags['host-key'];
    if (!flags.local && !hostKey && flags.address) {
      hostKey = await this.confirmPresentedKey(flags.address, flags.port);
    }

    const result = await core.addHost(context, this.adminActor(), {
      name: args.name,
      transport: flags.local ? 'local' : 'ssh',
      address: flags.address,
      port: flags.port,
      user: flags.user,
      hostKey,
      bridge: flags.bridge,
      dataDir: flags['data-dir'],
      rangeStart: flags['range-start'],
      rangeEnd: flags['range-end'],
      virtType: flags['virt-type'] as 'kvm' | 'qemu' | undefined,
      network: networkSettingsInput(flags),
    });
    this.log(`added host ${result.host.name}: virtualisation ${result.host.virt_type} (${result.facts.kvm.works ? 'KVM works' : `KVM unusable: ${result.facts.kvm.detail}`}), bridge ${result.host.bridge} ${result.host.bridge_cidr}, servers ${result.host.range_start}–${result.host.range_end}`);
    return {
      host: hostJson(result.host),
      problems: result.problems,
      kvm: result.facts.kvm,
      libvirtVersion: result.facts.libvirt.version,
      roundTrips: result.roundTrips,
    };
  }

  private async confirmPresentedKey(address: string, port: number): Promise<string> {
    const core = await import('@vome/core');
    if (!process.stdin.isTTY || this.jsonEnabled()) {
      throw new core.InvalidInputError('pass --host-key: without a terminal the key the host presents cannot be confirmed');
    }
    const config = await this.config_();
    const presented = await core.fetchHostKey(address, port, config.sshConnectTimeoutMs);
    const print = core.fingerprint(core.parseHostKey(presented).blob);
    const { confirm } = await import('@inquirer/prompts');
    process.stderr.write(`${address}:${port} presents ${presented.split(' ')[0]} key ${print}\n`);
    const accepted = await confirm({ message: 'Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host console. Pin this key?', default: false });
    if (!accepted) {
      throw new core.InvalidInputError('host key not confirmed; nothing was recorded');
    }
    return presented;
  }
}
