import { type Kysely, sql } from 'kysely';

// Frozen: this migration never imports application code, so later changes to
// the code cannot change what it does.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- Networks a VM may not reach through the uplink: by default every
    -- private and shared range, where a host's LAN and control plane live.
    ALTER TABLE hosts
      ADD COLUMN blocked_networks text NOT NULL DEFAULT '10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16';
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE hosts DROP COLUMN blocked_networks;`.execute(db);
}
