import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import type { Db } from '../../../src/db/connection.js';
import type { Host, Image } from '../../../src/db/schema.js';
import { HostCommandError } from '../../../src/errors/index.js';
import type { HostContext } from '../../../src/hosts/hosts.js';
import { addImage, hostImagePath, imageStoreDir, placeImage } from '../../../src/images/images.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { CommandResult, CommandRunner, RunOptions } from '../../../src/runner/command-runner.js';
import { LocalRunner } from '../../../src/runner/local-runner.js';
import { ADMIN, insertHost, rejection } from '../../support/fixtures.js';
import { ImageFiles, sha256Of } from '../../support/image-files.js';
import { hasCommand, requirement } from '../../support/requirements.js';
import { TestDatabase } from '../../support/test-database.js';

const tools = requirement(hasCommand('qemu-img') && hasCommand('sha256sum'), 'qemu-img or sha256sum is missing (packages qemu-utils and coreutils)');

/** A LocalRunner that counts uploads and can hold each one until a barrier opens. */
class CountingRunner implements CommandRunner {
  readonly hostName = 'ha-1';
  uploads = 0;
  private readonly inner = new LocalRunner('ha-1');

  constructor(private readonly afterUpload: () => Promise<void> = async () => undefined) {}

  get roundTrips(): number {
    return this.inner.roundTrips;
  }

  run(script: string, options: RunOptions): Promise<CommandResult> {
    return this.inner.run(script, options);
  }

  async putFile(localPath: string, remotePath: string): Promise<void> {
    this.uploads += 1;
    await this.inner.putFile(localPath, remotePath);
    await this.afterUpload();
  }

  async close(): Promise<void> {}
}

/** Returns a function that resolves once it has been called `parties` times. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return async () => {
    arrived += 1;
    if (arrived === parties) {
      open();
    }
    await opened;
  };
}

describe.runIf(tools)('placeImage', () => {
  const database = new TestDatabase();
  let root: string;
  let count = 0;

  beforeAll(async () => {
    await database.start();
    root = await mkdtemp(join(tmpdir(), 'vome-place-image-'));
  });

  afterAll(async () => {
    await database.stop();
    await rm(root, { recursive: true, force: true });
  });

  interface Setup {
    db: Db;
    context: HostContext;
    host: Host;
    image: Image;
    target: string;
  }

  /** Adds a qcow2 image and a local host whose data folder is named `dataDirName`. */
  async function setUp(dataDirName = 'host'): Promise<Setup> {
    count += 1;
    const db = await database.fresh();
    const home = join(root, `home-${count}`);
    const sources = await mkdtemp(join(root, `sources-${count}-`));
    const context: HostContext = { db, config: loadConfig({ VOME_HOME: home }), logger: silentLogger };
    const image = await addImage(context, ADMIN, { name: 'haos', source: await new ImageFiles(sources).qcow2() });
    const host = await insertHost(db, { data_dir: join(root, `data-${count}`, dataDirName) });
    return { db, context, host, image, target: hostImagePath(host, image) };
  }

  async function placements(db: Db): Promise<string[]> {
    return (await db.selectFrom('image_placements').select('path').execute()).map((row) => row.path);
  }

  it('places a read-only copy and records it', async () => {
    const setup = await setUp();
    const runner = new CountingRunner();

    expect(await placeImage(setup.context, runner, setup.host, setup.image)).toBe(setup.target);

    expect(await sha256Of(setup.target)).toBe(setup.image.sha256);
    expect((await stat(setup.target)).mode & 0o777).toBe(0o444);
    expect(await readdir(dirname(setup.target))).toEqual([setup.target.slice(dirname(setup.target).length + 1)]);
    expect(await placements(setup.db)).toEqual([setup.target]);
    expect(runner.uploads).toBe(1);
  });

  it('skips the upload when the right file is there', async () => {
    const setup = await setUp();
    await placeImage(setup.context, new CountingRunner(), setup.host, setup.image);
    const runner = new CountingRunner();

    await placeImage(setup.context, runner, setup.host, setup.image);

    expect(runner.uploads).toBe(0);
    expect(runner.roundTrips).toBe(1);
  });

  it('replaces an unrecorded same-size file with wrong content', async () => {
    const setup = await setUp();
    await placeImage(setup.context, new CountingRunner(), setup.host, setup.image);
    const size = (await stat(setup.target)).size;
    await chmod(setup.target, 0o644);
    await writeFile(setup.target, Buffer.alloc(size, 0x42));
    // Recorded placements are trusted by size; a file vome did not record is hashed.
    await setup.context.db.deleteFrom('image_placements').execute();
    const runner = new CountingRunner();

    await placeImage(setup.context, runner, setup.host, setup.image);

    expect(runner.uploads).toBe(1);
    expect(await sha256Of(setup.target)).toBe(setup.image.sha256);
    expect((await stat(setup.target)).mode & 0o777).toBe(0o444);
  });

  it('places into a folder named with a backslash', async () => {
    // sha256sum escapes such a name in its output and puts "\" before the hash.
    const setup = await setUp('back\\slash');
    await placeImage(setup.context, new CountingRunner(), setup.host, setup.image);
    expect(await sha256Of(setup.target)).toBe(setup.image.sha256);

    const runner = new CountingRunner();
    await placeImage(setup.context, runner, setup.host, setup.image);
    expect(runner.uploads).toBe(0);
  });

  it('runs two placements of one image at once', async () => {
    const setup = await setUp();
    // Both uploads finish before either is verified and renamed.
    const bothUploaded = barrier(2);
    const runners = [new CountingRunner(bothUploaded), new CountingRunner(bothUploaded)];

    const outcomes = await Promise.allSettled(runners.map((runner) => placeImage(setup.context, runner, setup.host, setup.image)));

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(runners.map((runner) => runner.uploads)).toEqual([1, 1]);
    expect(await sha256Of(setup.target)).toBe(setup.image.sha256);
    expect(await readdir(dirname(setup.target))).toEqual([setup.target.slice(dirname(setup.target).length + 1)]);
    expect(await placements(setup.db)).toEqual([setup.target]);
  });

  it('removes uploads idle for an hour', async () => {
    const setup = await setUp();
    const folder = dirname(setup.target);
    await mkdir(folder, { recursive: true });
    const stale = `${setup.target}.part-stale`;
    const recent = `${setup.target}.part-recent`;
    await writeFile(stale, 'partial');
    await writeFile(recent, 'partial');
    const idle = new Date(Date.now() - 2 * 60 * 60_000);
    await utimes(stale, idle, idle);

    await placeImage(setup.context, new CountingRunner(), setup.host, setup.image);

    expect((await readdir(folder)).sort()).toEqual([setup.target, recent].map((path) => path.slice(folder.length + 1)).sort());
  });

  it('rejects and removes a corrupt upload', async () => {
    const setup = await setUp();
    const stored = join(imageStoreDir(setup.context.config.home), `${setup.image.sha256}.qcow2`);
    await chmod(stored, 0o644);
    await writeFile(stored, Buffer.concat([await readFile(stored), Buffer.from('changed')]));

    const error = await rejection(placeImage(setup.context, new CountingRunner(), setup.host, setup.image));

    expect(error).toBeInstanceOf(HostCommandError);
    expect(error.message).toMatch(/^command "verify image" on host "ha-1" exited with 3: checksum [0-9a-f]{64} of the upload does not match$/);
    expect(await readdir(dirname(setup.target))).toEqual([]);
    expect(await placements(setup.db)).toEqual([]);
  });
});
