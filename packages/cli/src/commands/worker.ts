import { Flags } from '@oclif/core';
import { BaseCommand } from '../lib/base-command.js';

interface WorkerRequestJson {
  id: string;
  kind: string;
  state: string;
  serverId: string | null;
  error: string | null;
}

export default class Worker extends BaseCommand {
  static override summary = 'Run the jobs the portal queues: server creation after a code, start, stop and restart.';
  static override description = [
    'Jobs are queued in PostgreSQL with graphile-worker and run with the same core code as the CLI, as the customer who asked, so ownership and entitlement are checked again.',
    'Without --once it runs until SIGINT or SIGTERM and finishes the jobs it has started. Servers created from the portal go to --host and --image (or VOME_PORTAL_HOST and VOME_PORTAL_IMAGE); without them, to the ready host with the fewest servers and the newest image.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> worker --once',
    '<%= config.bin %> worker --once --json',
    '<%= config.bin %> worker --concurrency 4 --log-level info',
  ];

  static override flags = {
    once: Flags.boolean({ summary: 'Run the jobs that are due now, then exit.' }),
    concurrency: Flags.integer({ summary: 'Jobs to run at once.', default: 2, min: 1, max: 32 }),
    host: Flags.string({ summary: 'Host for servers created from the portal.', env: 'VOME_PORTAL_HOST' }),
    image: Flags.string({ summary: 'Image for servers created from the portal.', env: 'VOME_PORTAL_IMAGE' }),
    vcpus: Flags.integer({ summary: 'vCPUs of servers created from the portal [default: 2].', env: 'VOME_PORTAL_VCPUS', min: 1, max: 64 }),
    memory: Flags.integer({ summary: 'Memory of servers created from the portal, in MiB [default: 2048].', env: 'VOME_PORTAL_MEMORY_MIB', min: 256, max: 262_144 }),
    disk: Flags.integer({ summary: 'Disk size of servers created from the portal, in GiB [default: 32].', env: 'VOME_PORTAL_DISK_GIB', min: 1, max: 16_384 }),
  };

  async run(): Promise<{ requests: WorkerRequestJson[] } | { stopped: true }> {
    const { flags } = await this.parse(Worker);
    const { getHost, getImage, installJobQueue, resolveDatabaseUrl, runDueJobs, startJobWorker } = await import('@vome/core');
    const context = await this.context();
    // A wrong name would otherwise surface only when a customer's server is created.
    if (flags.host) {
      await getHost(context.db, flags.host);
    }
    if (flags.image) {
      await getImage(context.db, flags.image);
    }
    const connectionString = await resolveDatabaseUrl(context.config);
    await installJobQueue(connectionString);
    const options = { connectionString, context, defaults: { host: flags.host, image: flags.image, size: { vcpus: flags.vcpus, memoryMib: flags.memory, diskGib: flags.disk } }, concurrency: flags.concurrency };

    if (flags.once) {
      const startedAt = new Date();
      await runDueJobs(options);
      const finished = await context.db
        .selectFrom('portal_requests')
        .selectAll()
        .where('finished_at', '>=', startedAt)
        .orderBy('finished_at')
        .execute();
      const requests = finished.map((request) => ({ id: request.id, kind: request.kind, state: request.state, serverId: request.server_id, error: request.error }));
      if (!this.jsonEnabled()) {
        this.log(requests.length === 0 ? 'no jobs were due' : requests.map((request) => `${request.kind} ${request.state}${request.error ? `: ${request.error}` : ''}`).join('\n'));
      }
      return { requests };
    }

    const runner = await startJobWorker(options);
    this.note(`worker started (concurrency ${flags.concurrency}); stop it with Ctrl-C`);
    const stop = () => {
      this.note('worker stopping after its running jobs');
      void runner.stop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await runner.promise;
    return { stopped: true };
  }
}
