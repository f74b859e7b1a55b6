import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import type { Db } from '../../../src/db/connection.js';
import { ConflictError, InvalidInputError } from '../../../src/errors/index.js';
import type { HostContext } from '../../../src/hosts/hosts.js';
import { addImage, getImage, hostImagePath, imageStoreDir, listImages } from '../../../src/images/images.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { ADMIN, auditCount, rejection } from '../../support/fixtures.js';
import { ImageFiles, fileState, sha256Of } from '../../support/image-files.js';
import { hasCommand, requirement } from '../../support/requirements.js';
import { TestDatabase } from '../../support/test-database.js';

const tools = requirement(hasCommand('qemu-img') && hasCommand('xz'), 'qemu-img or xz is missing (packages qemu-utils and xz-utils)');

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe.runIf(tools)('addImage', () => {
  const database = new TestDatabase();
  let root: string;
  let count = 0;

  beforeAll(async () => {
    await database.start();
    root = await mkdtemp(join(tmpdir(), 'vome-images-'));
  });

  afterAll(async () => {
    await database.stop();
    await rm(root, { recursive: true, force: true });
  });

  interface Setup {
    db: Db;
    context: HostContext;
    files: ImageFiles;
    home: string;
  }

  /** Creates a fresh database, an empty VOME_HOME and a folder for source files. */
  async function setUp(): Promise<Setup> {
    count += 1;
    const db = await database.fresh();
    const home = join(root, `home-${count}`);
    const sources = await mkdtemp(join(root, `sources-${count}-`));
    const context: HostContext = { db, config: loadConfig({ VOME_HOME: home }), logger: silentLogger };
    return { db, context, files: new ImageFiles(sources), home };
  }

  /** Lists the image store, which may not exist yet. */
  async function storeContents(home: string): Promise<string[]> {
    try {
      return (await readdir(imageStoreDir(home))).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return [];
      }
      throw error;
    }
  }

  /** Checks that a rejected add left no row, no event, no file and the source as it was. */
  async function expectNothingKept(setup: Setup, source: string, before: Awaited<ReturnType<typeof fileState>> | undefined): Promise<void> {
    expect(await listImages(setup.db)).toEqual([]);
    expect(await auditCount(setup.db)).toBe(0);
    expect(await storeContents(setup.home)).toEqual([]);
    if (before) {
      expect(await fileState(source)).toEqual(before);
    }
  }

  it('accepts a qcow2 and stores a read-only copy', async () => {
    const setup = await setUp();
    const source = await setup.files.qcow2();
    await chmod(source, 0o640);
    const before = await fileState(source);

    const image = await addImage(setup.context, ADMIN, { name: 'haos', source });

    expect(image).toMatchObject({
      name: 'haos',
      format: 'qcow2',
      virtual_size_bytes: '67108864',
      file_size_bytes: String(before.size),
      sha256: before.sha256,
      source,
    });
    const stored = join(imageStoreDir(setup.home), `${before.sha256}.qcow2`);
    expect(await storeContents(setup.home)).toEqual([`${before.sha256}.qcow2`]);
    expect((await stat(stored)).mode & 0o777).toBe(0o444);
    expect(await sha256Of(stored)).toBe(before.sha256);
    expect(await fileState(source)).toEqual(before);
    expect(await getImage(setup.db, 'haos')).toEqual(image);
  });

  it('audits the image', async () => {
    const setup = await setUp();
    const source = await setup.files.qcow2();
    const image = await addImage(setup.context, ADMIN, { name: 'haos', source });

    const events = await setup.db.selectFrom('audit_events').selectAll().execute();
    expect(events.map((event) => [event.action, event.target_kind, event.target_id, event.details])).toEqual([
      ['image.add', 'image', image.id, { name: 'haos', format: 'qcow2', sha256: image.sha256, source }],
    ]);
  });

  it('decompresses an xz image and stores the decompressed copy', async () => {
    const setup = await setUp();
    const qcow2 = await setup.files.qcow2('haos_ova.qcow2');
    const qcow2State = await fileState(qcow2);
    const source = await setup.files.xz(qcow2);
    const before = await fileState(source);

    const image = await addImage(setup.context, ADMIN, { name: 'haos', source, sha256: before.sha256 });

    expect(image).toMatchObject({ format: 'qcow2', sha256: qcow2State.sha256, file_size_bytes: String(qcow2State.size), source });
    expect(await storeContents(setup.home)).toEqual([`${qcow2State.sha256}.qcow2`]);
    expect(await fileState(source)).toEqual(before);
  });

  it('accepts a raw disk with an MBR', async () => {
    const setup = await setUp();
    const source = await setup.files.rawMbr();
    const sha256 = await sha256Of(source);

    const image = await addImage(setup.context, ADMIN, { name: 'raw-disk', source });

    expect(image).toMatchObject({ format: 'raw', virtual_size_bytes: '1048576', file_size_bytes: '1048576', sha256 });
    expect(await storeContents(setup.home)).toEqual([`${sha256}.raw`]);
  });

  it('accepts a checksum in upper case', async () => {
    const setup = await setUp();
    const source = await setup.files.qcow2();
    const sha256 = await sha256Of(source);
    expect((await addImage(setup.context, ADMIN, { name: 'haos', source, sha256: sha256.toUpperCase() })).sha256).toBe(sha256);
  });

  it('keeps one stored file for one image under two names', async () => {
    const setup = await setUp();
    const source = await setup.files.qcow2();
    await addImage(setup.context, ADMIN, { name: 'haos', source });
    await addImage(setup.context, ADMIN, { name: 'haos-again', source });

    expect((await listImages(setup.db)).map((image) => image.name)).toEqual(['haos', 'haos-again']);
    expect(await storeContents(setup.home)).toEqual([`${await sha256Of(source)}.qcow2`]);
  });

  it('rejects a checksum mismatch and keeps nothing', async () => {
    const setup = await setUp();
    const source = await setup.files.xz(await setup.files.qcow2());
    const before = await fileState(source);
    const wrong = 'f'.repeat(64);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source, sha256: wrong }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(`SHA-256 mismatch for ${source}: expected ${wrong}, got ${before.sha256}`);
    expect((error as InvalidInputError).hints).toEqual(['download the image again, and check the checksum against the release page']);
    await expectNothingKept(setup, source, before);
  });

  it.each([
    ['random bytes', (files: ImageFiles) => files.randomBytes(), (path: string) => `^${escapeRegExp(`${path} is not a disk image: it is neither qcow2 nor a raw disk with a partition table`)}$`],
    [
      'a qcow2 header followed by garbage',
      (files: ImageFiles) => files.qcow2MagicThenGarbage(),
      (path: string) => `^${escapeRegExp(`${path} is not a readable disk image: qemu-img: Could not open '${path}': `)}.+$`,
    ],
    ['a truncated qcow2', (files: ImageFiles) => files.truncatedQcow2(), (path: string) => `^${escapeRegExp(`${path} is a corrupt qcow2 image: `)}\\d+ errors were found`],
    ['a VMDK', (files: ImageFiles) => files.vmdk(), (path: string) => `^${escapeRegExp(`${path} has format "vmdk"; vome accepts qcow2 and raw images`)}$`],
  ])('rejects %s and keeps nothing', async (_case, make, pattern) => {
    const setup = await setUp();
    const source = await make(setup.files);
    await chmod(source, 0o640);
    const before = await fileState(source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(new RegExp(pattern(source)));
    await expectNothingKept(setup, source, before);
  });

  it('rejects a corrupt xz file and keeps nothing', async () => {
    const setup = await setUp();
    const source = await setup.files.corruptXz();
    const before = await fileState(source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(`cannot decompress ${source}: it is not a valid xz file`);
    await expectNothingKept(setup, source, before);
  });

  it('rejects an xz file holding random bytes and keeps nothing', async () => {
    const setup = await setUp();
    const source = await setup.files.xz(await setup.files.randomBytes());
    const before = await fileState(source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(/ is not a disk image: it is neither qcow2 nor a raw disk with a partition table$/);
    await expectNothingKept(setup, source, before);
  });

  it.each([
    ['an invalid name', { name: 'Bad_Name' }, 'invalid image name "Bad_Name": use 1–63 characters of lower-case letters a–z, digits and hyphens, not starting or ending with a hyphen'],
    ['a malformed checksum', { sha256: 'abc' }, 'invalid --sha256 "abc": expected 64 hexadecimal characters'],
    ['an http:// source', { source: 'http://images.invalid/haos.qcow2.xz' }, 'invalid image source "http://images.invalid/haos.qcow2.xz": give a local path or an https:// URL'],
    ['a missing file', { source: '/nonexistent/haos.qcow2' }, 'image file /nonexistent/haos.qcow2 not found or not readable'],
  ])('rejects %s and keeps nothing', async (_case, change, message) => {
    const setup = await setUp();

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source: '/nonexistent/default.qcow2', ...change }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(message);
    await expectNothingKept(setup, '', undefined);
  });

  it('rejects a taken name before reading the file', async () => {
    const setup = await setUp();
    const first = await setup.files.qcow2();
    await addImage(setup.context, ADMIN, { name: 'haos', source: first });

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source: '/nonexistent/other.qcow2' }));

    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe('image "haos" already exists');
    expect(await listImages(setup.db)).toHaveLength(1);
  });

  it('keeps only the winner when two adds race for one name', async () => {
    const setup = await setUp();
    const qcow2Source = await setup.files.qcow2('one.qcow2');
    const rawSource = await setup.files.rawMbr('other.raw');

    const outcomes = await Promise.allSettled([
      addImage(setup.context, ADMIN, { name: 'haos', source: qcow2Source }),
      addImage(setup.context, ADMIN, { name: 'haos', source: rawSource }),
    ]);

    const winners = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    const losers = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as Error] : []));
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect(losers[0]).toBeInstanceOf(ConflictError);
    expect(losers[0]?.message).toBe('image "haos" already exists');
    expect(await storeContents(setup.home)).toEqual([`${winners[0]?.sha256}.${winners[0]?.format}`]);
    expect(await auditCount(setup.db)).toBe(1);
  });
});

describe('hostImagePath', () => {
  it('names the file by name, checksum and format', () => {
    expect(hostImagePath({ data_dir: '/var/lib/vome/host' }, { name: 'haos', sha256: '0123456789abcdef'.repeat(4), format: 'qcow2' })).toBe(
      '/var/lib/vome/host/images/haos-0123456789ab.qcow2',
    );
  });
});
