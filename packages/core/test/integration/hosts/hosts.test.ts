import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../../src/errors/index.js';
import { getHost, listHosts, removeHost } from '../../../src/hosts/hosts.js';
import { ADMIN, insertAccount, insertHost, insertImage, insertServer, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

describe('removeHost', () => {
  it('removes a host from the list and keeps its record', async () => {
    const db = await database.fresh();
    const host = await insertHost(db);

    const removed = await removeHost(db, ADMIN, 'ha-1');

    expect(removed.id).toBe(host.id);
    expect(await listHosts(db)).toEqual([]);
    const record = await db.selectFrom('hosts').selectAll().where('id', '=', host.id).executeTakeFirstOrThrow();
    expect(record.removed_at).toBeInstanceOf(Date);
    const error = await rejection(getHost(db, 'ha-1'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe('host "ha-1" not found');
  });

  it('audits the removal', async () => {
    const db = await database.fresh();
    const host = await insertHost(db);
    await removeHost(db, ADMIN, 'ha-1');

    const events = await db.selectFrom('audit_events').selectAll().execute();
    expect(events.map((event) => [event.action, event.target_kind, event.target_id, event.details])).toEqual([
      ['host.remove', 'host', host.id, { name: 'ha-1' }],
    ]);
  });

  it('removes a host whose servers are all destroyed', async () => {
    const db = await database.fresh();
    const host = await insertHost(db);
    const server = await insertServer(db, {
      account: await insertAccount(db),
      host,
      image: await insertImage(db),
      name: 'kitchen',
      ipv4: '10.232.0.10',
      macSuffix: '01',
      state: 'destroyed',
    });

    await removeHost(db, ADMIN, 'ha-1');

    expect(await listHosts(db)).toEqual([]);
    const serverRecord = await db.selectFrom('servers').select('host_id').where('id', '=', server.id).executeTakeFirstOrThrow();
    expect(serverRecord.host_id).toBe(host.id);
  });

  it('frees the name for a new host', async () => {
    const db = await database.fresh();
    await insertHost(db);
    await removeHost(db, ADMIN, 'ha-1');

    const again = await insertHost(db);

    expect((await listHosts(db)).map((host) => host.id)).toEqual([again.id]);
  });

  it('keeps a host that still has servers', async () => {
    const db = await database.fresh();
    const host = await insertHost(db);
    const account = await insertAccount(db);
    const image = await insertImage(db);
    await insertServer(db, { account, host, image, name: 'kitchen', ipv4: '10.232.0.10', macSuffix: '01', state: 'running' });
    await insertServer(db, { account, host, image, name: 'garage', ipv4: '10.232.0.11', macSuffix: '02', state: 'stopped' });

    const error = await rejection(removeHost(db, ADMIN, 'ha-1'));

    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe('host "ha-1" still has servers: garage, kitchen');
    expect((await listHosts(db)).map((listed) => listed.id)).toEqual([host.id]);
  });
});
