import { describe, expect, it } from 'vitest';
import { type HostFacts, hostProblems, parseHostFacts } from '../../../src/hosts/host-probe.js';

/** Builds probe output from `key=value` pairs; null leaves a key out. */
function probeOutput(overrides: Record<string, string | null> = {}): string {
  const lines: Record<string, string | null> = {
    libvirt_ok: '1',
    libvirt_version: '9.0.0',
    qemu_img: 'qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)',
    ovmf_code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
    ovmf_vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
    bridge_cidr: '10.232.0.1/24',
    dhcp_running: '1',
    dhcp_release: '1',
    cpus: '8',
    memory_kib: '16314412',
    kvm_device: '1',
    kvm_detail: 'VM status: running',
    default_route_interface: 'eth0',
    ...overrides,
  };
  return `${Object.entries(lines)
    .filter(([, value]) => value !== null)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')}\n`;
}

const parse = (overrides: Record<string, string | null> = {}): HostFacts => parseHostFacts(probeOutput(overrides), 'br-haos', '/var/lib/vome/host');

const LIBVIRT_DOWN =
  "error: failed to connect to the hypervisor error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory uri=qemu:///system";

describe('parseHostFacts', () => {
  it('reads a host where everything works', () => {
    expect(parse()).toEqual({
      libvirt: { ok: true, version: '9.0.0', error: null },
      qemuImg: 'qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)',
      ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd',
      ovmfVars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
      bridge: { name: 'br-haos', cidr: '10.232.0.1/24' },
      dhcp: { hostsDir: '/var/lib/vome/host/dhcp-hosts', running: true, releaseTool: true },
      kvm: { device: true, works: true, detail: 'VM status: running' },
      cpus: 8,
      memoryMib: 15_932,
      defaultRouteInterface: 'eth0',
    });
  });

  it('reads a host without a default route', () => {
    expect(parse({ default_route_interface: '' }).defaultRouteInterface).toBeNull();
  });

  it('reads libvirt being down, keeping an "=" inside the error', () => {
    const facts = parse({ libvirt_ok: '0', libvirt_version: null, libvirt_error: `${LIBVIRT_DOWN} ` });
    expect(facts.libvirt).toEqual({ ok: false, version: null, error: LIBVIRT_DOWN });
  });

  it('reads an empty bridge address as a missing bridge', () => {
    expect(parse({ bridge_cidr: '' }).bridge).toEqual({ name: 'br-haos', cidr: null });
  });

  it('reads empty tool lines as missing tools', () => {
    const facts = parse({ qemu_img: '', ovmf_code: null, ovmf_vars: null });
    expect(facts.qemuImg).toBeNull();
    expect(facts.ovmfCode).toBeNull();
    expect(facts.ovmfVars).toBeNull();
  });

  it.each([
    ['VM status: running', true],
    ['VM status: paused (internal-error)', false],
    ['VM status: shutdown', false],
    ["Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.", false],
    ['error: failed to initialize kvm: Permission denied', false],
    ['no status from QEMU', false],
  ])('reads KVM detail %j as works=%s', (detail, works) => {
    expect(parse({ kvm_detail: detail }).kvm).toEqual({ device: true, works, detail });
  });

  it('reports KVM not tried without a detail', () => {
    expect(parse({ kvm_detail: null }).kvm).toEqual({ device: true, works: false, detail: 'not tried' });
  });

  it('reports a missing /dev/kvm', () => {
    expect(parse({ kvm_device: '0', kvm_detail: null }).kvm).toEqual({ device: false, works: false, detail: '/dev/kvm is missing or not accessible' });
  });

  it('reads a stopped DHCP server and a missing dhcp_release', () => {
    expect(parse({ dhcp_running: '0', dhcp_release: '0' }).dhcp).toEqual({ hostsDir: '/var/lib/vome/host/dhcp-hosts', running: false, releaseTool: false });
  });

  it('ignores unknown keys and lines without a key', () => {
    const output = `warning: something odd\n=orphan\n${probeOutput()}extra_key=1\n`;
    expect(parseHostFacts(output, 'br-haos', '/var/lib/vome/host')).toEqual(parse());
  });

  it('tolerates CRLF line ends', () => {
    const output = probeOutput().replaceAll('\n', '\r\n');
    expect(parseHostFacts(output, 'br-haos', '/var/lib/vome/host')).toEqual(parse());
  });

  it.each(['cpus', 'memory_kib', 'libvirt_ok', 'kvm_device'])('rejects output without %s', (key) => {
    expect(() => parse({ [key]: null })).toThrow();
  });
});

describe('hostProblems', () => {
  it('returns nothing for a ready host', () => {
    expect(hostProblems(parse())).toEqual([]);
  });

  it('does not count KVM as a problem', () => {
    expect(hostProblems(parse({ kvm_device: '0', kvm_detail: null }))).toEqual([]);
    expect(hostProblems(parse({ kvm_detail: 'VM status: paused (internal-error)' }))).toEqual([]);
  });

  it.each([
    [
      'libvirt down',
      { libvirt_ok: '0', libvirt_version: null, libvirt_error: 'error: failed to connect to the hypervisor' },
      'libvirt is not reachable (virsh -c qemu:///system): error: failed to connect to the hypervisor; start libvirtd or install libvirt-daemon-system',
    ],
    [
      'libvirt down without an error text',
      { libvirt_ok: '0', libvirt_version: null, libvirt_error: '' },
      'libvirt is not reachable (virsh -c qemu:///system): no answer; start libvirtd or install libvirt-daemon-system',
    ],
    ['qemu-img missing', { qemu_img: '' }, 'qemu-img is missing; install qemu-utils'],
    ['OVMF missing', { ovmf_code: null, ovmf_vars: null }, 'no OVMF firmware found under /usr/share/OVMF; install ovmf'],
    ['bridge missing', { bridge_cidr: '' }, 'bridge "br-haos" does not exist or has no IPv4 address; create it, or pass --bridge'],
    [
      'DHCP server stopped',
      { dhcp_running: '0' },
      'no DHCP server for reservations in /var/lib/vome/host/dhcp-hosts (dnsmasq with --dhcp-hostsdir and its pid in dnsmasq.pid beside it)',
    ],
    ['dhcp_release missing', { dhcp_release: '0' }, "dhcp_release is missing (it frees a destroyed server's DHCP lease); install dnsmasq-utils"],
  ])('reports %s', (_case, overrides, message) => {
    expect(hostProblems(parse(overrides))).toEqual([message]);
  });

  it('lists every problem at once, in a fixed order', () => {
    const facts = parse({ libvirt_ok: '0', libvirt_version: null, qemu_img: '', bridge_cidr: '', dhcp_release: '0' });
    expect(hostProblems(facts)).toEqual([
      'libvirt is not reachable (virsh -c qemu:///system): no answer; start libvirtd or install libvirt-daemon-system',
      'qemu-img is missing; install qemu-utils',
      'bridge "br-haos" does not exist or has no IPv4 address; create it, or pass --bridge',
      "dhcp_release is missing (it frees a destroyed server's DHCP lease); install dnsmasq-utils",
    ]);
  });
});
