import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, VomeError } from '../../../src/errors/index.js';
import { MAX_IMAGE_BYTES, decompressXz, formatBytes, inspectImage, isXz, sha256File, xzUncompressedSize } from '../../../src/images/image-file.js';
import { ImageFiles, sha256Of } from '../../support/image-files.js';
import { rejection } from '../../support/fixtures.js';
import { hasCommand, requirement } from '../../support/requirements.js';

const tools = requirement(hasCommand('qemu-img') && hasCommand('xz'), 'qemu-img or xz is missing (packages qemu-utils and xz-utils)');

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Polls `condition` every 20 ms until it holds, and fails after `timeoutMs`. */
async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Reads a process's name and state from /proc/<pid>/stat, or undefined once it is gone. */
function processStat(pid: number): { name: string; state: string; parent: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The name is in parentheses and may contain spaces, so the fields after
    // it are counted from the last ")".
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { name: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), state: fields[0] ?? '', parent: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

function processName(pid: number): string | undefined {
  return processStat(pid)?.name;
}

/** Reports whether a process exists and is not a zombie waiting to be reaped. */
function isRunning(pid: number): boolean {
  const state = processStat(pid)?.state;
  return state !== undefined && state !== 'Z';
}

/** Lists the processes below `root`, at any depth. */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    const parent = Number.isInteger(pid) ? processStat(pid)?.parent : undefined;
    if (parent !== undefined) {
      parents.set(pid, parent);
    }
  }
  const below = (pid: number): number[] => [...parents].filter(([, parent]) => parent === pid).flatMap(([child]) => [child, ...below(child)]);
  return below(root);
}

describe.runIf(tools)('image files', () => {
  let folder: string;
  let files: ImageFiles;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'vome-image-file-'));
    files = new ImageFiles(folder);
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  describe('sha256File', () => {
    it('hashes a file', async () => {
      const path = await files.rawMbr('hash.raw');
      expect(await sha256File(path)).toBe(await sha256Of(path));
    });

    it('hashes an empty file', async () => {
      const path = join(folder, 'empty');
      await writeFile(path, '');
      expect(await sha256File(path)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    });
  });

  describe('isXz', () => {
    it('recognises an xz file', async () => {
      expect(await isXz(await files.xz(await files.qcow2('for-xz.qcow2')))).toBe(true);
    });

    it.each([
      ['a qcow2', (f: ImageFiles) => f.qcow2('not-xz.qcow2')],
      ['a raw disk', (f: ImageFiles) => f.rawMbr('not-xz.raw')],
    ])('does not take %s for xz', async (_case, make) => {
      expect(await isXz(await make(files))).toBe(false);
    });
  });

  describe('decompressXz', () => {
    it('restores the original bytes', async () => {
      const original = await files.qcow2('round-trip.qcow2');
      const target = join(folder, 'round-trip.out');
      await decompressXz(await files.xz(original), target);
      expect(await sha256Of(target)).toBe(await sha256Of(original));
    });

    it("rejects a corrupt file with xz's reason", async () => {
      const source = await files.corruptXz();
      const target = join(folder, 'corrupt.out');
      const error = await rejection(decompressXz(source, target));
      expect(error).toBeInstanceOf(InvalidInputError);
      // The reason is xz's message (xz 5.4) without its "xz: <path>: " prefix.
      expect(error.message).toBe(`cannot decompress ${source}: Compressed data is corrupt`);
      await expect(stat(target)).rejects.toThrow(/ENOENT/);
    });

    it('names the file by its label', async () => {
      const source = await files.corruptXz('labelled.xz');
      const error = await rejection(decompressXz(source, join(folder, 'labelled.out'), '/srv/haos.qcow2.xz'));
      expect(error.message).toBe('cannot decompress /srv/haos.qcow2.xz: Compressed data is corrupt');
    });

    it('rejects a claimed size above the maximum', async () => {
      const claimed = MAX_IMAGE_BYTES + 1;
      const source = await files.xzClaimingSize(claimed, Buffer.alloc(2 ** 20, 1), 'above-maximum.xz');
      const target = join(folder, 'above-maximum.out');

      const error = await rejection(decompressXz(source, target));

      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(
        `the decompressed image of ${source} is too large: 64.0 GiB (68719476737 bytes), above the maximum image size of 64.0 GiB (68719476736 bytes)`,
      );
      await expect(stat(target)).rejects.toThrow(/ENOENT/);
    });

    it('stops at output beyond the claimed size', async () => {
      const source = await files.xzClaimingSize(2 ** 20, Buffer.alloc(8 * 2 ** 20, 1), 'under-claimed.xz');
      const target = join(folder, 'under-claimed.out');

      const error = await rejection(decompressXz(source, target));

      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`cannot decompress ${source}: the decompressed data exceeds the 1048576 bytes recorded in its xz index`);
      await expect(stat(target)).rejects.toThrow(/ENOENT/);
    });

    it('reports a failed write with its cause', async () => {
      const source = await files.xz(await files.rawMbr('write-failure.raw'));
      const target = join(folder, 'write-failure.out');
      await writeFile(target, 'in the way');

      const error = await rejection(decompressXz(source, target));

      expect(error).toBeInstanceOf(VomeError);
      expect((error as VomeError).code).toBe('image_write_failed');
      expect(error.message).toBe(`cannot write ${target}: EEXIST: file already exists, open '${target}'`);
      expect(readFileSync(target, 'utf8')).toBe('in the way');
    });

    it('rejects a claimed size above free space', async (context) => {
      // A small file system is needed for a claim above the free space that
      // stays below the maximum size. /dev/shm is a tmpfs on most Linux systems.
      const shm = await statfs('/dev/shm').catch(() => undefined);
      const free = shm ? shm.bavail * shm.bsize : Number.POSITIVE_INFINITY;
      if (free + 2 ** 20 > MAX_IMAGE_BYTES) {
        context.skip('/dev/shm is missing or has 64 GiB or more free');
      }
      const targetFolder = await mkdtemp('/dev/shm/vome-image-file-');
      try {
        const claimed = free + 2 ** 20;
        const source = await files.xzClaimingSize(claimed, Buffer.alloc(2 ** 20, 1), 'above-free-space.xz');

        const error = await rejection(decompressXz(source, join(targetFolder, 'image')));

        expect(error).toBeInstanceOf(VomeError);
        expect((error as VomeError).code).toBe('insufficient_disk_space');
        expect(error.message).toMatch(
          new RegExp(`^${escapeRegExp(`not enough free space for the decompressed image of ${source}: it needs ${formatBytes(claimed)}, and ${targetFolder} has `)}.+ free$`),
        );
        expect(await readdir(targetFolder)).toEqual([]);
      } finally {
        await rm(targetFolder, { recursive: true, force: true });
      }
    });

    it('ends xz when the caller is killed', async () => {
      // 128 streams of 64 MiB zeros: 8 GiB of output, which xz cannot finish
      // in the second the test waits after the kill.
      const source = await files.xzOfZeros(128, 'kill.xz');
      const target = join(folder, 'kill.out');
      const script = join(folder, 'decompress-child.mts');
      await writeFile(
        script,
        `const { decompressXz } = await import(process.argv[2]);\nawait decompressXz(process.argv[3], process.argv[4]);\n`,
      );
      const child = execa('node', ['--import', 'tsx', script, new URL('../../../src/images/image-file.ts', import.meta.url).href, source, target], {
        cwd: new URL('../../../../../', import.meta.url),
        reject: false,
      });
      let xzPids: number[] = [];
      try {
        await waitFor(async () => ((await stat(target).catch(() => undefined))?.size ?? 0) > 0, 30_000);
        xzPids = descendants(child.pid ?? 0).filter((pid) => processName(pid) === 'xz');
        expect(xzPids).not.toEqual([]);

        child.kill('SIGKILL');
        await child;

        const ended = await waitFor(async () => xzPids.every((pid) => !isRunning(pid)), 1000).then(
          () => true,
          () => false,
        );
        expect(ended).toBe(true);
      } finally {
        child.kill('SIGKILL');
        for (const pid of xzPids.filter(isRunning)) {
          process.kill(pid, 'SIGKILL');
        }
      }
    });
  });

  describe('xzUncompressedSize', () => {
    it('sums the sizes of all streams', async () => {
      expect(await xzUncompressedSize(await files.xzOfZeros(3, 'three-streams.xz'))).toBe(3 * 64 * 2 ** 20);
    });

    it("rejects a non-xz file with xz's reason", async () => {
      const path = await files.rawMbr('not-xz-for-list.raw');
      const error = await rejection(xzUncompressedSize(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`cannot decompress ${path}: File format not recognized`);
    });
  });

  describe('inspectImage', () => {
    it('reads a qcow2', async () => {
      expect(await inspectImage(await files.qcow2('inspect.qcow2'))).toEqual({ format: 'qcow2', virtualSizeBytes: 67_108_864 });
    });

    it('reads a raw disk with an MBR', async () => {
      expect(await inspectImage(await files.rawMbr('inspect.raw'))).toEqual({ format: 'raw', virtualSizeBytes: 1_048_576 });
    });

    it('reads a raw disk with a GPT header', async () => {
      expect(await inspectImage(await files.rawGpt('inspect-gpt.raw'))).toEqual({ format: 'raw', virtualSizeBytes: 1_048_576 });
    });

    it('rejects random bytes as not a disk image', async () => {
      const path = await files.randomBytes();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} is not a disk image: it is neither qcow2 nor a raw disk with a partition table`);
    });

    it('rejects a qcow2 with a backing file', async () => {
      const base = await files.qcow2('backing-base.qcow2');
      const path = join(folder, 'with-backing.qcow2');
      const { execa } = await import('execa');
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, path]);
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} has a backing file (${base}); a base image must be self-contained`);
    });

    it('rejects an external raw data file', async () => {
      const path = await files.qcow2WithDataFile('raw-data-file.raw');
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} has an external data file (${join(folder, 'raw-data-file.raw')}); a base image must be self-contained`);
    });

    it('rejects an amended data file unread', async () => {
      // A stand-in for a host file such as /etc/shadow.
      const secret = join(folder, 'shadow');
      await writeFile(secret, 'root:secret-hash:20000::::::\n', { mode: 0o600 });
      const path = await files.qcow2AmendedDataFile(secret);

      const error = await rejection(inspectImage(path));

      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} has an external data file (${secret}); a base image must be self-contained`);
      expect(readFileSync(secret, 'utf8')).toBe('root:secret-hash:20000::::::\n');
    });

    it('rejects an unnamed data file', async () => {
      const path = await files.qcow2WithUnnamedDataFile();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} has an external data file (its name is not recorded in the image); a base image must be self-contained`);
    });

    it('opens a "json:" name as a file', async () => {
      // Given a bare "json:{…}", qemu-img reads options instead of a file:
      // here they would open a clean raw disk in place of the named file,
      // which is a qcow2 with a backing file.
      await files.rawMbr('json-clean.raw');
      const name = 'json:{"driver":"raw","file":{"driver":"file","filename":"json-clean.raw"}}';
      const base = await files.qcow2('json-base.qcow2');
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, join(folder, name)]);
      const cwd = process.cwd();
      process.chdir(folder);
      try {
        const error = await rejection(inspectImage(name));
        expect(error).toBeInstanceOf(InvalidInputError);
        expect(error.message).toBe(`${name} has a backing file (${base}); a base image must be self-contained`);
      } finally {
        process.chdir(cwd);
      }
    });

    it('names the image by its label', async () => {
      const path = await files.qcow2MagicThenGarbage('label-garbage.qcow2');
      const error = await rejection(inspectImage(path, '/srv/haos.qcow2'));
      expect(error.message).toMatch(/^\/srv\/haos\.qcow2 is not a readable disk image: qemu-img: Could not open '\/srv\/haos\.qcow2': .+/);
    });

    it('rejects a qcow2 header followed by garbage', async () => {
      const path = await files.qcow2MagicThenGarbage();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      // The rest is qemu-img's own reason, which differs between QEMU versions.
      expect(error.message).toMatch(new RegExp(`^${escapeRegExp(`${path} is not a readable disk image: qemu-img: Could not open '${path}': `)}.+`));
    });

    it('rejects a truncated qcow2 as corrupt', async () => {
      const path = await files.truncatedQcow2();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toMatch(
        new RegExp(`^${escapeRegExp(`${path} is a corrupt qcow2 image: `)}\\d+ errors were found on the image\\. Data may be corrupted, or further writes to the image may corrupt it\\.$`),
      );
    });

    it('rejects a format other than qcow2 and raw', async () => {
      const path = await files.vmdk();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} has format "vmdk"; vome accepts qcow2 and raw images`);
    });

    it('rejects a missing file', async () => {
      const path = join(folder, 'missing.qcow2');
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toMatch(new RegExp(`^${escapeRegExp(`${path} is not a readable disk image: `)}`));
    });
  });
});
