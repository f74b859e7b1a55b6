import { BaseCommand } from '../../lib/base-command.js';

export default class AuditVerify extends BaseCommand {
  static override summary = 'Verify the audit log hash chain.';
  static override description = 'Recomputes every event hash from the first event. Exits 6 and names the first bad event when an event was edited, or when events before it were removed or reordered.';
  static override examples = ['<%= config.bin %> audit verify', '<%= config.bin %> audit verify --json'];

  async run(): Promise<{ ok: true; events: number; headHash: string }> {
    const { verifyAudit, AuditChainError } = await import('@vome/core');
    const result = await verifyAudit(await this.db());
    if (!result.ok) {
      throw new AuditChainError(`audit chain broken at event ${result.badEventId}: ${result.detail}`, {
        hints: ['restore the audit_events table from a backup and investigate who changed it'],
        fields: { eventId: result.badEventId, reason: result.reason, verifiedEvents: result.events },
      });
    }
    this.log(`audit chain intact: ${result.events} events`);
    return result;
  }
}
