import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Host, Server } from '../../../src/db/schema.js';
import { domainName, renderDomainXml, serverDir } from '../../../src/servers/domain-xml.js';
import { hasCommand, requirement } from '../../support/requirements.js';

const SERVER: Server = {
  id: '2f0d0c4e-8a51-4d62-9d43-5a8f2b1e7c90',
  name: 'kitchen',
  subdomain: 'kitchen-flat-12',
  account_id: '9b0f4a51-0000-4000-8000-000000000001',
  host_id: '9b0f4a51-0000-4000-8000-000000000002',
  image_id: '9b0f4a51-0000-4000-8000-000000000003',
  vcpus: 2,
  memory_mib: 3072,
  disk_gib: 40,
  mac: '52:54:00:1a:2b:3c',
  ipv4: '10.232.0.10',
  ha_port: 8123,
  tunnel_slot: null,
  tunnel_public_key: null,
  state: 'provisioning',
  suspended_at: null,
  created_at: new Date('2026-12-04T10:00:00Z'),
  updated_at: new Date('2026-12-04T10:00:00Z'),
  destroyed_at: null,
};

const HOST: Host = {
  id: SERVER.host_id,
  name: 'ha-1',
  transport: 'local',
  ssh_address: null,
  ssh_port: null,
  ssh_user: null,
  host_key: null,
  host_key_sha256: null,
  bridge: 'br-haos',
  bridge_cidr: '10.232.0.1/24',
  range_start: '10.232.0.10',
  range_end: '10.232.0.254',
  virt_type: 'qemu',
  data_dir: '/var/lib/vome/host',
  ovmf_code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  ovmf_vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
  vcpus: 8,
  memory_mib: 16_384,
  uplink: 'eth0',
  ha_domain: 'ha.example.test',
  tls_certificate_path: '/etc/vome/tls/fullchain.pem',
  tls_key_path: '/etc/vome/tls/privkey.pem',
  nginx_site_path: '/etc/nginx/conf.d/vome.conf',
  nginx_main_config_path: '/etc/nginx/nginx.conf',
  tunnel_network: '10.100.0.0/16',
  tunnel_port_start: 51820,
  blocked_networks: '',
  created_at: new Date('2026-12-04T09:00:00Z'),
  checked_at: null,
  removed_at: null,
};

const SERVER_DIR = '/var/lib/vome/host/servers/2f0d0c4e-8a51-4d62-9d43-5a8f2b1e7c90';

describe('domainName', () => {
  it('prefixes the server name with vome-', () => {
    expect(domainName(SERVER)).toBe('vome-kitchen');
  });
});

describe('serverDir', () => {
  it('is the server id under the host data folder', () => {
    expect(serverDir(HOST, SERVER)).toBe(SERVER_DIR);
  });
});

describe('renderDomainXml', () => {
  const qemuXml = renderDomainXml(SERVER, HOST, { format: 'qcow2' });
  const kvmXml = renderDomainXml(SERVER, { ...HOST, virt_type: 'kvm' }, { format: 'qcow2' });

  it.each([
    ['the domain type', "<domain type='qemu'>"],
    ['the domain name', '  <name>vome-kitchen</name>'],
    ['the uuid', '  <uuid>2f0d0c4e-8a51-4d62-9d43-5a8f2b1e7c90</uuid>'],
    ['the memory', "  <memory unit='MiB'>3072</memory>"],
    ['the current memory', "  <currentMemory unit='MiB'>3072</currentMemory>"],
    ['the vCPU count', "  <vcpu placement='static'>2</vcpu>"],
    ['UEFI firmware', "  <os firmware='efi'>"],
    ['the q35 machine', "    <type arch='x86_64' machine='q35'>hvm</type>"],
    ['secure boot off', "      <feature enabled='no' name='secure-boot'/>"],
    ['no enrolled keys', "      <feature enabled='no' name='enrolled-keys'/>"],
    ['its own NVRAM file', `    <nvram>${SERVER_DIR}/nvram.fd</nvram>`],
    ['the virtio disk target', "      <target dev='vda' bus='virtio'/>"],
    ['the qcow2 disk driver', "      <driver name='qemu' type='qcow2' discard='unmap'/>"],
    ['the disk path', `      <source file='${SERVER_DIR}/disk.qcow2'/>`],
    ['the bridge interface', "    <interface type='bridge'>"],
    ['the MAC', "      <mac address='52:54:00:1a:2b:3c'/>"],
    ['the bridge', "      <source bridge='br-haos'/>"],
    ['the tap device named after the address', "      <target dev='vm0ae8000a'/>"],
    ['the virtio NIC', "      <model type='virtio'/>"],
    ['the guest agent channel', "      <target type='virtio' name='org.qemu.guest_agent.0'/>"],
    [
      'the vome metadata',
      "    <vome:server xmlns:vome='https://vome.dev/xmlns/libvirt/server/1' id='2f0d0c4e-8a51-4d62-9d43-5a8f2b1e7c90' subdomain='kitchen-flat-12' image-format='qcow2'/>",
    ],
  ])('contains %s', (_what, line) => {
    expect(qemuXml.split('\n')).toContain(line);
  });

  it('puts the firmware features inside the os element', () => {
    expect(qemuXml).toContain(
      "  <os firmware='efi'>\n    <type arch='x86_64' machine='q35'>hvm</type>\n    <firmware>\n      <feature enabled='no' name='enrolled-keys'/>\n      <feature enabled='no' name='secure-boot'/>\n    </firmware>\n",
    );
  });

  it('leaves the loader and NVRAM template to libvirt firmware selection', () => {
    expect(qemuXml).not.toContain('<loader');
    expect(qemuXml).not.toContain('template=');
  });

  it('attaches the guest agent channel over a unix socket', () => {
    expect(qemuXml).toContain("    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n    </channel>\n");
  });

  it('has one disk and one interface', () => {
    expect(qemuXml.match(/<disk /g)).toHaveLength(1);
    expect(qemuXml.match(/<interface /g)).toHaveLength(1);
  });

  it('does not ask for host-passthrough under qemu', () => {
    expect(qemuXml).not.toContain('<cpu');
  });

  it('uses host-passthrough under kvm', () => {
    expect(kvmXml.startsWith("<domain type='kvm'>\n")).toBe(true);
    expect(kvmXml.split('\n')).toContain("  <cpu mode='host-passthrough' check='none' migratable='on'/>");
  });

  it('differs between qemu and kvm only in the type and CPU lines', () => {
    const qemuLines = qemuXml.split('\n');
    const kvmOnly = kvmXml.split('\n').filter((line) => !qemuLines.includes(line));
    expect(kvmOnly).toEqual(["<domain type='kvm'>", "  <cpu mode='host-passthrough' check='none' migratable='on'/>"]);
  });

  it('records a raw image format in the metadata', () => {
    expect(renderDomainXml(SERVER, HOST, { format: 'raw' })).toContain(" image-format='raw'/>");
  });

  it('escapes hostile values', () => {
    const xml = renderDomainXml(
      { ...SERVER, subdomain: `x'/><evil a='1`, name: 'a<b>&"c' },
      { ...HOST, data_dir: "/srv/a&b'<c>", bridge: "br'0" },
      { format: 'qcow2' },
    );
    expect(xml).toContain(' subdomain=\'x&#39;/&#62;&#60;evil a=&#39;1\' ');
    expect(xml).toContain('  <name>vome-a&#60;b&#62;&#38;&#34;c</name>');
    expect(xml).toContain('    <nvram>/srv/a&#38;b&#39;&#60;c&#62;/servers/2f0d0c4e-8a51-4d62-9d43-5a8f2b1e7c90/nvram.fd</nvram>');
    expect(xml).toContain("      <source file='/srv/a&#38;b&#39;&#60;c&#62;/servers/2f0d0c4e-8a51-4d62-9d43-5a8f2b1e7c90/disk.qcow2'/>");
    expect(xml).toContain("      <source bridge='br&#39;0'/>");
    expect(xml).not.toContain('<evil');
  });
});

const canValidate = requirement(
  hasCommand('virt-xml-validate') && hasCommand('xmllint'),
  'virt-xml-validate or xmllint is missing (packages libvirt-clients and libxml2-utils)',
);

describe.runIf(canValidate)('renderDomainXml against the libvirt schema', () => {
  let folder: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'vome-domain-xml-'));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  async function validate(name: string, xml: string): Promise<string> {
    const file = join(folder, `${name}.xml`);
    await writeFile(file, xml);
    const { stdout, stderr } = await promisify(execFile)('virt-xml-validate', [file, 'domain']);
    return `${stdout}${stderr}`.trim();
  }

  it.each([
    ['qemu', renderDomainXml(SERVER, HOST, { format: 'qcow2' })],
    ['kvm', renderDomainXml(SERVER, { ...HOST, virt_type: 'kvm' }, { format: 'qcow2' })],
    ['hostile', renderDomainXml({ ...SERVER, subdomain: `x'/><evil a='1` }, { ...HOST, data_dir: "/srv/a&b'<c>" }, { format: 'raw' })],
  ])('validates the %s domain', async (name, xml) => {
    expect(await validate(name, xml)).toBe(`${join(folder, `${name}.xml`)} validates`);
  });
});
