import type { Host, Image, Server } from '../db/schema.js';
import { tapName } from '../network/network-model.js';

/** Returns the libvirt domain name of a server. */
export function domainName(server: Pick<Server, 'name'>): string {
  return `vome-${server.name}`;
}

/** Returns the folder on the host with a server's overlay disk, NVRAM and domain XML. */
export function serverDir(host: Pick<Host, 'data_dir'>, server: Pick<Server, 'id'>): string {
  return `${host.data_dir}/servers/${server.id}`;
}

function escapeXml(value: string | number): string {
  return String(value).replace(/[<>&'"]/g, (character) => `&#${character.charCodeAt(0)};`);
}

/**
 * Renders a server's libvirt domain XML from its record alone: UEFI without
 * Secure Boot (HAOS has no legacy boot loader, and OVMF builds with enrolled
 * keys refuse it), its own NVRAM file (libvirt copies the matching VARS
 * template on first start; it picks the firmware itself and rejects a loader
 * path next to `firmware='efi'`), q35, a virtio disk and NIC on the
 * host bridge with the server's fixed MAC, and the guest-agent channel that
 * HAOS ships an agent for.
 */
export function renderDomainXml(server: Server, host: Host, image: Pick<Image, 'format'>): string {
  const dir = serverDir(host, server);
  const x = escapeXml;
  // Under KVM the guest gets the host CPU. Under TCG QEMU's default model
  // is used, because host-passthrough needs KVM.
  const cpu = host.virt_type === 'kvm' ? "  <cpu mode='host-passthrough' check='none' migratable='on'/>\n" : '';
  return `<domain type='${x(host.virt_type)}'>
  <name>${x(domainName(server))}</name>
  <uuid>${x(server.id)}</uuid>
  <title>vome server ${x(server.name)}</title>
  <metadata>
    <vome:server xmlns:vome='https://vome.dev/xmlns/libvirt/server/1' id='${x(server.id)}' subdomain='${x(server.subdomain)}' image-format='${x(image.format)}'/>
  </metadata>
  <memory unit='MiB'>${x(server.memory_mib)}</memory>
  <currentMemory unit='MiB'>${x(server.memory_mib)}</currentMemory>
  <vcpu placement='static'>${x(server.vcpus)}</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
    <firmware>
      <feature enabled='no' name='enrolled-keys'/>
      <feature enabled='no' name='secure-boot'/>
    </firmware>
    <nvram>${x(dir)}/nvram.fd</nvram>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
${cpu}  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='${x(dir)}/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='${x(server.mac)}'/>
      <source bridge='${x(host.bridge)}'/>
      <target dev='${x(tapName(server.ipv4))}'/>
      <model type='virtio'/>
    </interface>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <memballoon model='virtio'/>
  </devices>
</domain>
`;
}
