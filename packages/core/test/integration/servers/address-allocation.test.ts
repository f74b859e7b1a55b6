import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../../src/db/connection.js';
import type { Account, Host, Image } from '../../../src/db/schema.js';
import { AddressRangeFullError } from '../../../src/errors/index.js';
import { pickFreeAddress, randomMac } from '../../../src/servers/address-allocation.js';
import { insertAccount, insertHost, insertImage, insertServer, rejection, warmPool } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

interface Setup {
  db: Db;
  account: Account;
  host: Host;
  image: Image;
}

async function setUp(range: { start: string; end: string }): Promise<Setup> {
  const db = await database.fresh();
  const account = await insertAccount(db);
  const host = await insertHost(db, { range_start: range.start, range_end: range.end });
  const image = await insertImage(db);
  return { db, account, host, image };
}

/** Records a server and its address allocation, as createServer does. */
async function allocate(setup: Setup, index: number, ipv4: string, db: Db = setup.db): Promise<void> {
  const server = await insertServer(db, { ...setup, name: `server-${index}`, ipv4, macSuffix: index.toString(16).padStart(2, '0') });
  await db.insertInto('address_allocations').values({ host_id: setup.host.id, ipv4, server_id: server.id }).execute();
}

/** Picks and records an address in one transaction, as createServer does. */
async function pickAndAllocate(setup: Setup, index: number): Promise<string> {
  return setup.db.transaction().execute(async (trx) => {
    const ipv4 = await pickFreeAddress(trx, setup.host);
    // Widens the window between the pick and the insert, so that a missing
    // lock shows up as two servers with one address.
    await sql`SELECT pg_sleep(0.01)`.execute(trx);
    await allocate(setup, index, ipv4, trx);
    return ipv4;
  });
}

describe('pickFreeAddress', () => {
  it('picks the first address of an empty range', async () => {
    const setup = await setUp({ start: '10.232.0.10', end: '10.232.0.20' });
    expect(await setup.db.transaction().execute((trx) => pickFreeAddress(trx, setup.host))).toBe('10.232.0.10');
  });

  it('picks the lowest free address', async () => {
    const setup = await setUp({ start: '10.232.0.10', end: '10.232.0.20' });
    await allocate(setup, 1, '10.232.0.10');
    await allocate(setup, 2, '10.232.0.12');
    expect(await setup.db.transaction().execute((trx) => pickFreeAddress(trx, setup.host))).toBe('10.232.0.11');
  });

  it('picks the last address when only it is free', async () => {
    const setup = await setUp({ start: '10.232.0.10', end: '10.232.0.12' });
    await allocate(setup, 1, '10.232.0.10');
    await allocate(setup, 2, '10.232.0.11');
    expect(await setup.db.transaction().execute((trx) => pickFreeAddress(trx, setup.host))).toBe('10.232.0.12');
  });

  it('ignores addresses allocated on another host', async () => {
    const setup = await setUp({ start: '10.232.0.10', end: '10.232.0.20' });
    const other = await insertHost(setup.db, { name: 'ha-2' });
    await allocate({ ...setup, host: other }, 1, '10.232.0.10');
    expect(await setup.db.transaction().execute((trx) => pickFreeAddress(trx, setup.host))).toBe('10.232.0.10');
  });

  it('raises AddressRangeFullError on a full range', async () => {
    const setup = await setUp({ start: '10.232.0.10', end: '10.232.0.11' });
    await allocate(setup, 1, '10.232.0.10');
    await allocate(setup, 2, '10.232.0.11');

    const error = await rejection(setup.db.transaction().execute((trx) => pickFreeAddress(trx, setup.host)));
    expect(error).toBeInstanceOf(AddressRangeFullError);
    expect(error.message).toBe('host "ha-1" has no free address left in 10.232.0.10–10.232.0.11');
    expect((error as AddressRangeFullError).code).toBe('address_range_full');
    expect((error as AddressRangeFullError).hints).toEqual(['destroy an unused server on this host, or create the server on another host']);
  });

  it('gives 20 concurrent allocations on one host distinct addresses', async () => {
    const setup = await setUp({ start: '10.232.0.10', end: '10.232.0.40' });
    await warmPool(setup.db);

    const addresses = await Promise.all(Array.from({ length: 20 }, (_, index) => pickAndAllocate(setup, index + 1)));

    const expected = Array.from({ length: 20 }, (_, index) => `10.232.0.${10 + index}`);
    expect([...addresses].sort((a, b) => Number(a.split('.')[3]) - Number(b.split('.')[3]))).toEqual(expected);
    const stored = await setup.db.selectFrom('address_allocations').select(sql<string>`host(ipv4)`.as('ipv4')).orderBy('ipv4').execute();
    expect(stored.map((row) => row.ipv4)).toEqual(expected);
  });
});

describe('randomMac', () => {
  it('returns a MAC in the 52:54:00 prefix', () => {
    for (let index = 0; index < 100; index += 1) {
      expect(randomMac()).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    }
  });
});
