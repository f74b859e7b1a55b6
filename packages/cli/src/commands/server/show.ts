import { Args } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { type ServerJson, serverJson, table } from '../../lib/render.js';

interface OperationJson {
  id: string;
  kind: string;
  state: string;
  actor: string;
  attempts: number;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
  steps: Array<{ name: string; state: string; error: string | null }>;
}

export default class ServerShow extends BaseCommand {
  static override summary = 'Show a server and its recent operations.';
  static override examples = ['<%= config.bin %> server show kitchen', '<%= config.bin %> server show kitchen --json'];
  static override args = {
    name: Args.string({ description: 'Server name.', required: true }),
  };

  async run(): Promise<ServerJson & { operations: OperationJson[] }> {
    const { args } = await this.parse(ServerShow);
    const { getServer, listOperations } = await import('@vome/core');
    const db = await this.db();
    const server = await getServer(db, args.name);
    const operations: OperationJson[] = (await listOperations(db, server.id, 10)).map((operation) => ({
      id: operation.id,
      kind: operation.kind,
      state: operation.state,
      actor: operation.actor,
      attempts: operation.attempts,
      error: operation.error,
      createdAt: operation.created_at.toISOString(),
      finishedAt: operation.finished_at?.toISOString() ?? null,
      steps: operation.steps.map((step) => ({ name: step.name, state: step.state, error: step.error })),
    }));
    const json = serverJson(server);
    if (!this.jsonEnabled()) {
      this.log(
        table(
          ['FIELD', 'VALUE'],
          [
            ['name', json.name],
            ['state', json.state],
            ['subdomain', json.subdomain],
            ['account', json.account],
            ['host', json.host],
            ['image', json.image],
            ['address', json.ipv4],
            ['MAC', json.mac],
            ['HA port', json.haPort],
            ['size', `${json.vcpus} vCPU, ${json.memoryMib} MiB, ${json.diskGib} GiB`],
            ['suspended at', json.suspendedAt],
            ['created at', json.createdAt],
          ],
        ),
      );
      this.log('');
      this.log(table(['OPERATION', 'KIND', 'STATE', 'ACTOR', 'STARTED'], operations.map((o) => [o.id, o.kind, o.state, o.actor, o.createdAt])));
    }
    return { ...json, operations };
  }
}
