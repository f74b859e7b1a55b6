import { z } from 'zod';
import { VomeError } from '../errors/index.js';
import { type CommandRunner, parseKeyValueLines, shellQuote } from '../runner/command-runner.js';

/** Facts about a host that vome needs, read in one round trip. */
export interface HostFacts {
  libvirt: { ok: boolean; version: string | null; error: string | null };
  qemuImg: string | null;
  ovmfCode: string | null;
  ovmfVars: string | null;
  bridge: { name: string; cidr: string | null };
  dhcp: { hostsDir: string; running: boolean; releaseTool: boolean };
  kvm: { device: boolean; works: boolean; detail: string };
  cpus: number;
  memoryMib: number;
  /** The interface of the host's default IPv4 route, if it has one. */
  defaultRouteInterface: string | null;
}

const OVMF_CANDIDATES = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
  ['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
] as const;

/**
 * Builds the probe script. It prints `key=value` lines and always exits 0, so
 * that every missing piece is reported at once rather than the first one.
 *
 * KVM is tried for real: `/dev/kvm` can exist on a nested machine where every
 * guest still fails at firmware start, so a short QEMU run with the host's
 * OVMF must still be running after a few seconds for KVM to count as working.
 */
export function hostProbeScript(bridge: string, dataDir: string, tryKvm: boolean): string {
  const candidates = OVMF_CANDIDATES.map(([code, vars]) => `${shellQuote(code)}:${shellQuote(vars)}`).join(' ');
  return `
bridge=${shellQuote(bridge)}
data_dir=${shellQuote(dataDir)}
if out=$(virsh -c qemu:///system version --daemon 2>&1); then
  echo "libvirt_ok=1"
  echo "libvirt_version=$(printf '%s\\n' "$out" | sed -n 's/^Running against daemon: *//p' | head -n1)"
else
  echo "libvirt_ok=0"
  echo "libvirt_error=$(printf '%s' "$out" | tr '\\n' ' ' | cut -c1-300)"
fi
echo "qemu_img=$(qemu-img --version 2>/dev/null | head -n1 || true)"
for pair in ${candidates}; do
  code=\${pair%%:*}; vars=\${pair#*:}
  if [ -r "$code" ] && [ -r "$vars" ]; then echo "ovmf_code=$code"; echo "ovmf_vars=$vars"; break; fi
done
echo "bridge_cidr=$(ip -o -4 addr show dev "$bridge" 2>/dev/null | awk '{print $4}' | head -n1 || true)"
hosts_dir="$data_dir/dhcp-hosts"
pid_file="$data_dir/dnsmasq.pid"
if [ -d "$hosts_dir" ] && [ -r "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then echo "dhcp_running=1"; else echo "dhcp_running=0"; fi
if command -v dhcp_release >/dev/null; then echo "dhcp_release=1"; else echo "dhcp_release=0"; fi
echo "cpus=$(nproc)"
echo "default_route_interface=$(ip -o -4 route show default 2>/dev/null | awk '{print $5; exit}' || true)"
echo "memory_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  echo "kvm_device=1"
  if ${tryKvm ? 'true' : 'false'} && [ -n "\${code:-}" ]; then
    status=$( { sleep 4; echo 'info status'; sleep 1; echo quit; } | timeout 20 qemu-system-x86_64 -machine q35,accel=kvm -cpu host -m 128 \\
      -nodefaults -no-user-config -display none -snapshot -serial none -monitor stdio \\
      -drive if=pflash,format=raw,readonly=on,file="$code" -drive if=pflash,format=raw,file="$vars" 2>&1 \\
      | tr -d '\\033' | grep -ao 'VM status: [a-z-]*\\( ([a-z-]*)\\)\\?\\|Assertion.*\\|error:.*' | head -n1 || true)
    echo "kvm_detail=\${status:-no status from QEMU}"
  fi
else
  echo "kvm_device=0"
fi
`;
}

const factsSchema = z.object({
  libvirt_ok: z.enum(['0', '1']),
  libvirt_version: z.string().optional(),
  libvirt_error: z.string().optional(),
  qemu_img: z.string().optional(),
  ovmf_code: z.string().optional(),
  ovmf_vars: z.string().optional(),
  bridge_cidr: z.string().optional(),
  dhcp_running: z.enum(['0', '1']),
  dhcp_release: z.enum(['0', '1']),
  cpus: z.coerce.number().int().positive(),
  memory_kib: z.coerce.number().int().positive(),
  kvm_device: z.enum(['0', '1']),
  kvm_detail: z.string().optional(),
  default_route_interface: z.string().optional(),
});

/** Parses the probe's `key=value` lines; unknown keys are ignored. */
export function parseHostFacts(output: string, bridge: string, dataDir: string): HostFacts {
  const parsed = factsSchema.safeParse(parseKeyValueLines(output));
  if (!parsed.success) {
    const missing = parsed.error.issues.map((issue) => issue.path.join('.')).join(', ');
    throw new VomeError('host_probe_failed', `the host probe printed unexpected output (fields: ${missing})`, {
      hints: ['run the probe by hand with --log-level debug, and check that the host runs bash and coreutils'],
      fields: { stdout: output.slice(0, 2000) },
    });
  }
  const values = parsed.data;
  const blank = (value: string | undefined) => (value && value.length > 0 ? value : null);
  const kvmDetail = values.kvm_detail ?? (values.kvm_device === '1' ? 'not tried' : '/dev/kvm is missing or not accessible');
  return {
    libvirt: { ok: values.libvirt_ok === '1', version: blank(values.libvirt_version), error: blank(values.libvirt_error) },
    qemuImg: blank(values.qemu_img),
    ovmfCode: blank(values.ovmf_code),
    ovmfVars: blank(values.ovmf_vars),
    bridge: { name: bridge, cidr: blank(values.bridge_cidr) },
    dhcp: { hostsDir: `${dataDir}/dhcp-hosts`, running: values.dhcp_running === '1', releaseTool: values.dhcp_release === '1' },
    kvm: { device: values.kvm_device === '1', works: kvmDetail.startsWith('VM status: running'), detail: kvmDetail },
    cpus: values.cpus,
    memoryMib: Math.floor(values.memory_kib / 1024),
    defaultRouteInterface: blank(values.default_route_interface),
  };
}

/** Runs the probe on a host. */
export async function probeHost(runner: CommandRunner, bridge: string, dataDir: string, tryKvm: boolean): Promise<HostFacts> {
  const result = await runner.run(hostProbeScript(bridge, dataDir, tryKvm), { label: 'probe host', timeoutMs: 60_000 });
  return parseHostFacts(result.stdout, bridge, dataDir);
}

/** Lists what keeps a host from running servers; empty when it is ready. */
export function hostProblems(facts: HostFacts): string[] {
  const problems: string[] = [];
  if (!facts.libvirt.ok) {
    problems.push(`libvirt is not reachable (virsh -c qemu:///system): ${facts.libvirt.error ?? 'no answer'}; start libvirtd or install libvirt-daemon-system`);
  }
  if (!facts.qemuImg) {
    problems.push('qemu-img is missing; install qemu-utils');
  }
  if (!facts.ovmfCode || !facts.ovmfVars) {
    problems.push('no OVMF firmware found under /usr/share/OVMF; install ovmf');
  }
  if (!facts.bridge.cidr) {
    problems.push(`bridge "${facts.bridge.name}" does not exist or has no IPv4 address; create it, or pass --bridge`);
  }
  if (!facts.dhcp.running) {
    problems.push(`no DHCP server for reservations in ${facts.dhcp.hostsDir} (dnsmasq with --dhcp-hostsdir and its pid in dnsmasq.pid beside it)`);
  }
  if (!facts.dhcp.releaseTool) {
    problems.push('dhcp_release is missing (it frees a destroyed server\'s DHCP lease); install dnsmasq-utils');
  }
  return problems;
}
