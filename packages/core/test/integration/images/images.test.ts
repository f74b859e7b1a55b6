import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import type { Db } from '../../../src/db/connection.js';
import { ConflictError, InvalidInputError } from '../../../src/errors/index.js';
import type { HostContext } from '../../../src/hosts/hosts.js';
import { MAX_IMAGE_BYTES } from '../../../src/images/image-file.js';
import { STALE_WORK_FOLDER_MS, addImage, getImage, hostImagePath, imageStoreDir, listImages } from '../../../src/images/images.js';
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
    expect(error.message).toBe(`cannot decompress ${source}: Compressed data is corrupt`);
    await expectNothingKept(setup, source, before);
  });

  it('rejects an xz file above the maximum size and keeps nothing', async () => {
    const setup = await setUp();
    const source = await setup.files.xzClaimingSize(MAX_IMAGE_BYTES + 1, Buffer.alloc(2 ** 20, 1), 'bomb.qcow2.xz');
    const before = await fileState(source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(
      `the decompressed image of ${source} is too large: 64.0 GiB (68719476737 bytes), above the maximum image size of 64.0 GiB (68719476736 bytes)`,
    );
    await expectNothingKept(setup, source, before);
  });

  it('rejects an xz file larger than its index and keeps nothing', async () => {
    const setup = await setUp();
    const source = await setup.files.xzClaimingSize(2 ** 20, Buffer.alloc(8 * 2 ** 20, 1), 'under-claimed.qcow2.xz');
    const before = await fileState(source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error.message).toBe(`cannot decompress ${source}: the decompressed data exceeds the 1048576 bytes recorded in its xz index`);
    await expectNothingKept(setup, source, before);
  });

  it('rejects a qcow2 with a data file and keeps nothing', async () => {
    const setup = await setUp();
    // A stand-in for a host file such as /etc/shadow.
    const secret = join(setup.files.folder, 'shadow');
    await writeFile(secret, 'root:secret-hash:20000::::::\n', { mode: 0o600 });
    const secretBefore = await fileState(secret);
    const source = await setup.files.qcow2AmendedDataFile(secret);
    const before = await fileState(source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(`${source} has an external data file (${secret}); a base image must be self-contained`);
    await expectNothingKept(setup, source, before);
    expect(await fileState(secret)).toEqual(secretBefore);
  });

  it('names an xz image by its source in messages', async () => {
    const setup = await setUp();
    const source = await setup.files.xz(await setup.files.qcow2WithDataFile('data-file.raw', 'data-file.qcow2'));

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error.message).toBe(
      `${source} (decompressed) has an external data file (${join(setup.files.folder, 'data-file.raw')}); a base image must be self-contained`,
    );
  });

  it('rejects a symbolic link and keeps nothing', async () => {
    const setup = await setUp();
    const target = await setup.files.qcow2();
    const source = join(setup.files.folder, 'link.qcow2');
    await symlink(target, source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(`image file ${source} is a symbolic link, which vome does not follow`);
    expect((error as InvalidInputError).hints).toEqual([`give the path of the file itself, which readlink -f ${source} prints`]);
    await expectNothingKept(setup, '', undefined);
  });

  it.each([
    ['a folder', async (path: string) => mkdir(path)],
    ['a FIFO', async (path: string) => execFileSync('mkfifo', [path])],
  ])('rejects %s and keeps nothing', async (_case, make) => {
    const setup = await setUp();
    const source = join(setup.files.folder, 'special');
    await make(source);

    const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(`image file ${source} is not a regular file`);
    await expectNothingKept(setup, '', undefined);
  });

  it('reads a "json:" source as a file', async () => {
    // Given a bare "json:{…}", qemu-img reads options instead of a file:
    // here they would open a clean qcow2 in place of the named file, which
    // has a backing file.
    const setup = await setUp();
    await setup.files.qcow2('clean.qcow2');
    const base = await setup.files.qcow2('json-base.qcow2');
    const source = 'json:{"driver":"qcow2","file":{"driver":"file","filename":"clean.qcow2"}}';
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, join(setup.files.folder, source)]);
    const cwd = process.cwd();
    process.chdir(setup.files.folder);
    try {
      const error = await rejection(addImage(setup.context, ADMIN, { name: 'haos', source }));

      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${source} has a backing file (${base}); a base image must be self-contained`);
      await expectNothingKept(setup, '', undefined);
    } finally {
      process.chdir(cwd);
    }
  });

  it('removes work folders idle for an hour', async () => {
    const setup = await setUp();
    const store = imageStoreDir(setup.home);
    const idle = new Date(Date.now() - STALE_WORK_FOLDER_MS - 60_000);
    const folders = { stale: join(store, '.incoming-stale'), recent: join(store, '.incoming-recent'), busy: join(store, '.incoming-busy') };
    for (const folder of Object.values(folders)) {
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, 'download'), 'partial');
    }
    // An old folder with a file written just now belongs to an add that runs.
    await utimes(folders.stale, idle, idle);
    await utimes(join(folders.stale, 'download'), idle, idle);
    await utimes(folders.busy, idle, idle);
    const other = join(store, 'not-a-work-folder');
    await mkdir(other);
    await utimes(other, idle, idle);

    const image = await addImage(setup.context, ADMIN, { name: 'haos', source: await setup.files.qcow2() });

    expect(await storeContents(setup.home)).toEqual(['.incoming-busy', '.incoming-recent', `${image.sha256}.qcow2`, 'not-a-work-folder'].sort());
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
