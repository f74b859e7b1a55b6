import { Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { table } from '../../lib/render.js';

interface AuditEventJson {
  id: string;
  occurredAt: string;
  actor: string;
  action: string;
  target: string;
  sourceAddress: string | null;
  details: Record<string, unknown>;
  hash: string;
}

export default class AuditList extends BaseCommand {
  static override summary = 'List audit events, newest first.';
  static override examples = ['<%= config.bin %> audit list', '<%= config.bin %> audit list --action server.create --limit 5 --json'];
  static override flags = {
    limit: Flags.integer({ summary: 'Number of events.', default: 50, min: 1, max: 10_000 }),
    action: Flags.string({ summary: 'Only this action, such as server.create.' }),
    target: Flags.string({ summary: 'Only events on this target id.' }),
  };

  async run(): Promise<{ events: AuditEventJson[] }> {
    const { flags } = await this.parse(AuditList);
    const { listAudit } = await import('@vome/core');
    const events = (await listAudit(await this.db(), { limit: flags.limit, action: flags.action, targetId: flags.target })).map((event) => ({
      id: event.id,
      occurredAt: event.occurred_at.toISOString(),
      actor: `${event.actor_kind}:${event.actor_id}`,
      action: event.action,
      target: `${event.target_kind}:${event.target_id}`,
      sourceAddress: event.source_address,
      details: event.details,
      hash: event.hash,
    }));
    if (!this.jsonEnabled()) {
      this.log(events.length === 0 ? 'no events' : table(['ID', 'TIME', 'ACTOR', 'ACTION', 'TARGET'], events.map((e) => [e.id, e.occurredAt, e.actor, e.action, e.target])));
    }
    return { events };
  }
}
