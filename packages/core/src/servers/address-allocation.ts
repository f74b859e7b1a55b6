import { randomBytes } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database, Host } from '../db/schema.js';
import { AddressRangeFullError } from '../errors/index.js';
import { ipv4ToNumber, numberToIpv4 } from '../naming/ipv4.js';

/**
 * Picks the lowest free address in the host's range. Call inside the
 * transaction that inserts the allocation: the host row is locked, so two
 * creations on one host cannot pick the same address.
 */
export async function pickFreeAddress(trx: Transaction<Database>, host: Host): Promise<string> {
  await sql`SELECT id FROM hosts WHERE id = ${host.id} FOR UPDATE`.execute(trx);
  const taken = await trx.selectFrom('address_allocations').select(sql<string>`host(ipv4)`.as('ipv4')).where('host_id', '=', host.id).execute();
  const used = new Set(taken.map((row) => ipv4ToNumber(row.ipv4)));
  const start = ipv4ToNumber(host.range_start);
  const end = ipv4ToNumber(host.range_end);
  for (let candidate = start; candidate <= end; candidate += 1) {
    if (!used.has(candidate)) {
      return numberToIpv4(candidate);
    }
  }
  throw new AddressRangeFullError(host.name, `${host.range_start}–${host.range_end}`);
}

/**
 * Generates a MAC address in QEMU's locally administered 52:54:00 prefix with
 * three random bytes. Uniqueness is enforced by the database; callers retry.
 */
export function randomMac(): string {
  const bytes = [...randomBytes(3)].map((byte) => byte.toString(16).padStart(2, '0'));
  return `52:54:00:${bytes.join(':')}`;
}
