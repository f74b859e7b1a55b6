import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Result } from 'execa';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/run.js');

/** The test host as scripts/test-host/up.sh describes it in its env file. */
export interface TestHost {
  namespace: string;
  sshHost: string;
  sshPort: string;
  sshKey: string;
  hostKey: string;
  bridge: string;
  /** The bridge's own address with prefix, e.g. 10.232.0.1/24. */
  bridgeCidr: string;
  dataDir: string;
  /** The host's interface towards the namespace that plays the internet. */
  uplink: string;
  uplinkCidr: string;
  /** The namespace that plays the internet, and its address there. */
  internetNamespace: string;
  internetAddress: string;
  haDomain: string;
  tlsCertificate: string;
  tlsKey: string;
  nginxMainConfig: string;
  nginxSite: string;
}

/** Reads the test host's env file, or returns undefined when it is not up. */
export async function readTestHost(namespace = process.env.VOME_TH_NS ?? 'vome-th'): Promise<TestHost | undefined> {
  let text: string;
  try {
    text = await readFile(`/var/lib/vome-testhost/${namespace}/env`, 'utf8');
  } catch {
    return undefined;
  }
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const index = line.indexOf('=');
    if (index > 0) {
      values.set(line.slice(0, index), line.slice(index + 1));
    }
  }
  const get = (key: string): string => {
    const value = values.get(key);
    if (!value) {
      throw new Error(`test host env file lacks ${key}`);
    }
    return value;
  };
  return {
    namespace,
    sshHost: get('SSH_HOST'),
    sshPort: get('SSH_PORT'),
    sshKey: get('SSH_KEY'),
    hostKey: get('HOST_KEY'),
    bridge: get('BRIDGE'),
    bridgeCidr: get('BRIDGE_ADDR'),
    dataDir: get('DATA_DIR'),
    uplink: get('UPLINK'),
    uplinkCidr: get('UPLINK_ADDR'),
    internetNamespace: get('NET_NS'),
    internetAddress: get('INTERNET_ADDR').split('/')[0] as string,
    haDomain: get('HA_DOMAIN'),
    tlsCertificate: get('TLS_CERT'),
    tlsKey: get('TLS_KEY'),
    nginxMainConfig: get('NGINX_MAIN_CONF'),
    nginxSite: get('NGINX_SITE'),
  };
}

export type CliResult = Result<{ reject: false; all: false }>;

/**
 * Runs the built `vome` CLI with its own VOME_HOME and embedded PostgreSQL
 * port, so that a test file has a database of its own.
 */
export class VomeCli {
  private constructor(
    readonly home: string,
    readonly env: Record<string, string>,
  ) {}

  static async create(extraEnv: Record<string, string> = {}): Promise<VomeCli> {
    // Under /var/tmp with a searchable parent: the postgres user must reach it.
    const home = await mkdtemp('/var/tmp/vome-e2e-');
    await chmod(home, 0o711);
    const port = String(56_000 + (process.pid % 4000));
    return new VomeCli(home, { VOME_HOME: home, VOME_EMBEDDED_PG_PORT: port, ...extraEnv });
  }

  /** Runs a command; never throws on a non-zero exit. */
  async run(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return execa('node', [BIN, ...args], {
      env: { ...this.env, ...env, DATABASE_URL: '' },
      reject: false,
      stdin: 'ignore',
      timeout: 600_000,
    }) as Promise<CliResult>;
  }

  /** Runs a command with --json, expects exit 0 and returns the parsed result. */
  async json<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
    const result = await this.run([...args, '--json'], env);
    if (result.exitCode !== 0) {
      throw new Error(`vome ${args.join(' ')} exited ${result.exitCode}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    }
    return JSON.parse(result.stdout) as T;
  }

  /** Stops the embedded PostgreSQL and removes VOME_HOME. */
  async dispose(): Promise<void> {
    await this.run(['db', 'stop']);
    await rm(this.home, { recursive: true, force: true });
  }
}

/** Runs a command inside the test host's namespace. */
export async function inHost(host: TestHost, command: string, args: string[]): Promise<Result<{ reject: false }>> {
  return execa('ip', ['netns', 'exec', host.namespace, command, ...args], { reject: false }) as Promise<Result<{ reject: false }>>;
}

/** Lists the vome-… libvirt domains and server folders and reservations on the test host. */
export async function hostLeftovers(host: TestHost): Promise<{ domains: string[]; serverDirs: string[]; reservations: string[] }> {
  const domains = await execa('virsh', ['-q', '-c', 'qemu:///system', 'list', '--all', '--name'], { reject: false });
  const list = async (folder: string) => {
    const result = await execa('sh', ['-c', `ls -A ${folder} 2>/dev/null || true`]);
    return result.stdout.split('\n').filter((line) => line.length > 0);
  };
  return {
    domains: domains.stdout.split('\n').map((line) => line.trim()).filter((name) => name.startsWith('vome-')),
    serverDirs: await list(`${host.dataDir}/servers`),
    reservations: await list(`${host.dataDir}/dhcp-hosts`),
  };
}

/** Polls HTTP from inside the host namespace until the body contains `text`. */
export async function waitForHttp(host: TestHost, url: string, text: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const result = await inHost(host, 'curl', ['-s', '--max-time', '3', url]);
    last = `${result.stdout}${result.stderr}`;
    if (result.exitCode === 0 && result.stdout.includes(text)) {
      return result.stdout;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`${url} did not answer with "${text}" within ${timeoutMs} ms; last answer: ${last.slice(0, 200)}`);
}
