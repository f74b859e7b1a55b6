import { sql } from 'kysely';
import type { Actor } from '../../src/audit/actor.js';
import type { Db } from '../../src/db/connection.js';
import type { Account, Host, Image, NewHost, Server, ServerState } from '../../src/db/schema.js';

/** The admin that integration tests act as. */
export const ADMIN: Actor = { kind: 'admin', id: 'alice' };

/** Returns the error a promise rejects with, or fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

export async function insertAccount(db: Db, githubLogin = 'octocat'): Promise<Account> {
  return db
    .insertInto('accounts')
    .values({ github_login: githubLogin, display_name: `Display ${githubLogin}`, email: `${githubLogin}@example.org` })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Inserts a local host on 10.232.0.1/24; the range defaults to .10–.254. */
export async function insertHost(db: Db, overrides: Partial<NewHost> = {}): Promise<Host> {
  return db
    .insertInto('hosts')
    .values({
      name: 'ha-1',
      transport: 'local',
      bridge: 'br-haos',
      bridge_cidr: '10.232.0.1/24',
      range_start: '10.232.0.10',
      range_end: '10.232.0.254',
      virt_type: 'qemu',
      data_dir: '/var/lib/vome/host',
      ovmf_code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
      ovmf_vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
      vcpus: 8,
      memory_mib: 16_384,
      ...overrides,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function insertImage(db: Db, name = 'haos'): Promise<Image> {
  return db
    .insertInto('images')
    .values({
      name,
      format: 'qcow2',
      virtual_size_bytes: 32 * 2 ** 30,
      file_size_bytes: 2 ** 20,
      sha256: 'a'.repeat(64),
      source: `/srv/images/${name}.qcow2`,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export interface ServerFixture {
  account: Account;
  host: Host;
  image: Image;
  name: string;
  ipv4: string;
  /** The last byte of the MAC, in hex; the rest is 52:54:00:00:00. */
  macSuffix: string;
  state?: ServerState;
}

export async function insertServer(db: Db, fixture: ServerFixture): Promise<Server> {
  return db
    .insertInto('servers')
    .values({
      name: fixture.name,
      subdomain: fixture.name,
      account_id: fixture.account.id,
      host_id: fixture.host.id,
      image_id: fixture.image.id,
      vcpus: 2,
      memory_mib: 2048,
      disk_gib: 32,
      mac: `52:54:00:00:00:${fixture.macSuffix}`,
      ipv4: fixture.ipv4,
      state: fixture.state ?? 'provisioning',
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Opens every connection of the pool (10) at once, so that concurrent calls
 * in a test really overlap. On a cold pool the first calls run one after
 * another while their connections are being opened.
 */
export async function warmPool(db: Db): Promise<void> {
  await Promise.all(Array.from({ length: 10 }, () => sql`SELECT pg_sleep(0.05)`.execute(db)));
}

/** Counts the rows of the audit log. */
export async function auditCount(db: Db): Promise<number> {
  const row = await db.selectFrom('audit_events').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}
