import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { withProgress } from '../../lib/progress.js';
import { type ServerJson, serverJson } from '../../lib/render.js';

export interface ServerOperationJson {
  server: ServerJson;
  /** Absent when nothing had to run: destroy of a server already destroyed. */
  operation: { id: string; kind: string; state: string; attempts: number; resumed: boolean } | null;
  roundTrips: number;
}

export default class ServerCreate extends BaseCommand {
  static override summary = 'Create a Home Assistant OS server and start it.';
  static override description = `Records the server with a free address and MAC on the host, then places the base image, creates the qcow2 overlay, writes the DHCP reservation, defines the libvirt domain and starts it. Each step is recorded; if a run is interrupted, running the same command again finishes it.`;
  static override examples = [
    '<%= config.bin %> server create kitchen --account octocat --host ha-1 --image haos-16',
    '<%= config.bin %> server create flat-12 --subdomain flat12 --account octocat --host ha-1 --image haos-16 --memory 4096 --disk 64 --json',
  ];

  static override args = {
    name: Args.string({ description: 'Server name: a DNS label (lower case, 1–63 characters).', required: true }),
  };

  static override flags = {
    account: Flags.string({ char: 'a', summary: 'Owner: GitHub login or account id.', required: true }),
    host: Flags.string({ char: 'H', summary: 'Host to run the server on.', required: true }),
    image: Flags.string({ char: 'i', summary: 'Base image name.', required: true }),
    subdomain: Flags.string({ summary: 'Subdomain label; defaults to the server name.' }),
    vcpus: Flags.integer({ summary: 'Virtual CPUs.', default: 2 }),
    memory: Flags.integer({ summary: 'Memory in MiB.', default: 2048 }),
    disk: Flags.integer({ summary: 'Disk size in GiB (at least the image size).', default: 32 }),
    'ha-port': Flags.integer({ summary: "Home Assistant's port in the guest (8123, or 80 on new installs from HAOS 18.3).", default: 8123 }),
    wait: Flags.boolean({ summary: 'Wait for another operation on the server instead of failing.' }),
  };

  async run(): Promise<ServerOperationJson> {
    const { args, flags } = await this.parse(ServerCreate);
    const core = await import('@vome/core');
    const context = await this.context();
    const config = await this.config_();
    const result = await withProgress(this.jsonEnabled(), 'create', args.name, (onProgress) =>
      core.createServer(
        context,
        this.adminActor(),
        {
          name: args.name,
          subdomain: flags.subdomain,
          account: flags.account,
          host: flags.host,
          image: flags.image,
          vcpus: flags.vcpus,
          memoryMib: flags.memory,
          diskGib: flags.disk,
          haPort: flags['ha-port'],
        },
        { wait: flags.wait, onProgress, afterStep: killAfterStepHook(config.testKillAfterStep) },
      ),
    );
    const server = await core.getServer(context.db, result.server.name);
    this.log(`server ${server.name} is ${server.state} at ${server.ipv4} (${server.mac}) on host ${server.host_name}`);
    return operationJson(server, result);
  }
}

export function operationJson(
  server: import('@vome/core').ServerView,
  result: import('@vome/core').OperationResult,
): ServerOperationJson {
  return {
    server: serverJson(server),
    operation: {
      id: result.operation.id,
      kind: result.operation.kind,
      state: result.operation.state,
      attempts: result.operation.attempts,
      resumed: result.resumed,
    },
    roundTrips: result.roundTrips,
  };
}

/**
 * Test hook (VOME_TEST_KILL_AFTER_STEP=kind:step): the process kills itself
 * with SIGKILL right after that step is recorded as done, like a crash.
 */
export function killAfterStepHook(spec: string | undefined): ((kind: string, step: string) => void) | undefined {
  if (!spec) {
    return undefined;
  }
  return (kind, step) => {
    if (`${kind}:${step}` === spec) {
      process.kill(process.pid, 'SIGKILL');
    }
  };
}
